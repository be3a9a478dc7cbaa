"""A sweep whose worker process dies (kill -9, the out-of-memory killer, a crash): that variant
alone is recorded as died, a new process takes the dead one's place, the others finish, the
sweep writes sweep.csv and sweep.png and exits 1 naming the variant; --resume runs it again.

concurrent.futures' ProcessPoolExecutor, which the sweep used before, is broken for good after
one death: every task failed with BrokenProcessPool, the other workers were terminated, and
the command hung with no sweep.csv (epam/ai-dial-rag#11)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bpcli.train.executors import LocalExecutor, WorkerDied, how_it_ended
from helpers import tiny_spec


def test_an_exit_code_reads_as_how_the_process_ended():
    assert how_it_ended(-9) == "killed by signal 9 (SIGKILL)"
    assert how_it_ended(-15) == "killed by signal 15 (SIGTERM)"
    assert how_it_ended(3) == "exited with code 3 before it answered"


def test_a_dead_worker_fails_its_own_task_alone_and_is_replaced():
    # one worker: each death must be followed by a new process for the tasks still waiting
    pool = LocalExecutor(1)
    try:
        tasks = [pool.submit(os.getpid), pool.submit(signal.raise_signal, signal.SIGKILL),
                 pool.submit(os.getpid), pool.submit(os._exit, 3), pool.submit(os.getpid)]
        first, killed, second, exited, third = tasks
        with pytest.raises(WorkerDied, match=r"killed by signal 9 \(SIGKILL\)"):
            killed.result(timeout=60)
        with pytest.raises(WorkerDied, match="exited with code 3"):
            exited.result(timeout=60)
        # the same process until it died, a new one after each death
        assert first.result() != second.result() != third.result() != first.result()
        assert second.result() != os.getpid()
    finally:
        pool.shutdown()


def test_an_error_in_a_task_is_its_answer_not_a_death():
    pool = LocalExecutor(2)
    try:
        bad = pool.submit(int, "not a number")
        good = pool.submit(int, "42")
        with pytest.raises(ValueError, match="not a number"):
            bad.result(timeout=60)
        assert good.result(timeout=60) == 42
    finally:
        pool.shutdown()


def _workers_of(pid: int) -> list[int]:
    """The sweep's worker processes: its children started by multiprocessing's spawn (not its
    resource tracker), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue   # a process that ended meanwhile
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return sorted(found)


@pytest.mark.slow
def test_a_killed_worker_fails_its_variant_alone_and_resume_runs_it_again(tmp_path):
    # three variants of about 3 s each on three workers: one is killed with SIGKILL while it
    # trains; the sweep still ends, with its table, its picture, and exit 1 naming it
    Path(tmp_path / "long.yaml").write_text(tiny_spec(
        name="long", data={"n": 240, "val_split": 0.2}, training={"epochs": 300}))
    bpcli = str(Path(sys.executable).parent / "bpcli")
    folder = tmp_path / "my sweeps" / "first try"   # the printed hint is run as printed
    proc = subprocess.Popen([bpcli, "sweep", "long.yaml", "--grid", "optimizer.lr=0.1,0.03,0.01",
                             "--workers", "3", "--out", str(folder)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(_workers_of(proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _workers_of(proc.pid)
        assert len(workers) == 3, "the sweep did not start its three workers"
        time.sleep(1.0)   # every worker has its variant from the start: this one is training
        os.kill(workers[1], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "BrokenProcessPool" not in err, err
    table = pd.read_csv(folder / "sweep.csv").sort_values("index")
    assert sorted(table["status"]) == ["died", "ok", "ok"]
    dead = table[table["status"] == "died"].iloc[0]
    assert dead["message"] == "worker died: killed by signal 9 (SIGKILL)"
    assert (folder / "sweep.png").exists()
    assert "(2 ok, 0 failed, 1 died)" in out
    hint = f"bpcli sweep --resume '{folder}'"
    assert err.strip().endswith(f"({dead['run']}: killed by signal 9 (SIGKILL)): run them again "
                                f"with {hint}"), err

    # the hint as printed: the dead variant runs again, the finished ones are kept as they were
    kept = {r: (folder / r / "model.npz").stat().st_mtime_ns
            for r in table[table["status"] == "ok"]["run"]}
    import shlex
    again = subprocess.run([bpcli, *shlex.split(hint)[1:], "--workers", "3"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "3 variants, 2 already done, running 1" in again.stderr
    assert list(pd.read_csv(folder / "sweep.csv")["status"]) == ["ok", "ok", "ok"]
    assert {r: (folder / r / "model.npz").stat().st_mtime_ns for r in kept} == kept
