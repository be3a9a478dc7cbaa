"""Every command bpcli prints for the user to run works as printed, pasted into a shell: paths
are shell-quoted (``bpcli train --resume 'my runs/first try'``), not left to split at their
spaces (amoffat/sh PR 756). Each test makes bpcli print a hint about paths with spaces in
them, reads the hint as a shell does (shlex) and runs it."""

from __future__ import annotations

import os
import shlex
import signal
import threading
import time
from pathlib import Path

import pytest

from bpcli.cli import main
from helpers import cli, pictures, tiny_spec


def printed(text: str, start: str, words: int) -> list[str]:
    """The command that begins with ``start`` in ``text``, read as a shell reads it: the words
    of ``start`` and the ``words`` words after them (less the prose's comma or parenthesis
    that follows the last)."""
    assert start in text, f"{start!r} is not in:\n{text}"
    lexer = shlex.shlex(text[text.index(start):], posix=True)
    lexer.whitespace_split = True
    tokens = [lexer.get_token() for _ in range(len(start.split()) + words)]
    tokens[-1] = tokens[-1].rstrip(",;)")
    return tokens


def run_as_printed(capture, tokens: list[str], *more: str) -> str:
    """Run ``bpcli ...`` as printed (with ``more`` arguments after it); its stderr."""
    assert tokens[0] == "bpcli", tokens
    code, out, err = cli(capture, *tokens[1:], *more)
    assert code == 0, f"{shlex.join(tokens)} exited {code}\n{out}\n{err}"
    return err


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_init_says_next_validate_then_train_and_both_run(here, capsys):
    (here / "my specs").mkdir()
    code, out, _ = cli(capsys, "init", "--template", "lecture", "--out", "my specs/first spec.yaml")
    assert code == 0
    validate = printed(out, "bpcli validate", 1)
    train = printed(out, "bpcli train", 1)
    assert validate[2] == train[2] == "my specs/first spec.yaml"
    run_as_printed(capsys, validate)
    run_as_printed(capsys, train, "--epochs", "1", "--out", "r")


def _interrupt_after_first_checkpoint(run: Path) -> threading.Thread:
    """SIGINT to this process once ``run`` has a checkpoint: the trainer stops at a step."""
    def watch():
        deadline = time.monotonic() + 60
        while not (run / "last.npz").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_the_resume_hints_of_a_stopped_and_of_a_killed_run_run(here, capsys):
    (here / "s.yaml").write_text(tiny_spec(training={"epochs": 400}))
    run = here / "my runs" / "first try"
    watcher = _interrupt_after_first_checkpoint(run)
    code, _, err = cli(capsys, "train", "s.yaml", "--out", str(run))
    watcher.join()
    assert code == 130, err
    resume = printed(err, "bpcli train --resume", 1)
    assert resume[-1] == str(run)

    # the same run as a kill -9 leaves it (no summary, no final weights): eval says to resume
    (run / "summary.json").unlink()
    (run / "model.npz").unlink()
    code, _, err = cli(capsys, "eval", str(run))
    assert code == 2
    assert printed(err, "bpcli train --resume", 1) == resume
    run_as_printed(capsys, resume)
    assert (run / "model.npz").exists()


def test_a_run_killed_in_its_first_epoch_says_train_it_again_and_that_runs(here, capsys):
    (here / "s.yaml").write_text(tiny_spec())
    run = here / "my runs" / "cut short"
    cli(capsys, "train", "s.yaml", "--out", str(run))
    for name in ("summary.json", "model.npz", "last.npz", "best.npz", "metrics.csv"):
        (run / name).unlink(missing_ok=True)
    code, _, err = cli(capsys, "eval", str(run))
    assert code == 2
    again = printed(err, "bpcli train", 1)
    assert again[-1] == str(run / "spec.yaml")
    run_as_printed(capsys, again, "--out", "again")


def test_a_damaged_model_says_train_it_again_and_that_runs(here, capsys):
    (here / "s.yaml").write_text(tiny_spec())
    run = here / "my runs" / "damaged one"
    cli(capsys, "train", "s.yaml", "--out", str(run))
    (run / "model.npz").write_bytes((run / "model.npz").read_bytes()[:100])
    code, _, err = cli(capsys, "eval", str(run))
    assert code == 2
    run_as_printed(capsys, printed(err, "bpcli train", 1), "--out", "again")


def test_a_resume_with_a_spec_of_another_network_says_train_it_as_a_new_run(here, capsys):
    (here / "s.yaml").write_text(tiny_spec())
    other = here / "my specs" / "wider net.yaml"
    other.parent.mkdir()
    other.write_text(tiny_spec(layers=[{"conv1d": {"channels": 8, "kernel": 5, "pad": "same"}},
                                       "relu", {"dense": {"units": 1}}]))
    cli(capsys, "train", "s.yaml", "--out", "r")
    code, _, err = cli(capsys, "train", str(other), "--resume", "r")
    assert code == 2
    run_as_printed(capsys, printed(err, "bpcli train", 1), "--out", "new")


def test_runs_names_a_sweep_folder_with_a_command_that_lists_it(here, capsys):
    from bpcli.spec.validate import load
    from bpcli.train import sweep as sw

    (here / "s.yaml").write_text(tiny_spec())
    s = load(here / "s.yaml")
    variants = sw.plan(s, sw.parse_grid(["optimizer.lr=0.1,0.01"]), {}, 0, 1, 0)
    folder = sw.new_sweep(s, variants, here / "my sweeps" / "lr sweep", None, None)
    sw._store(folder, variants[0], {"status": "failed", "message": "refused", "files": {},
                                   "wall_s": 0.0})
    code, out, _ = cli(capsys, "runs", str(here / "my sweeps"))
    assert code == 0
    listing = printed(out, "bpcli runs", 1)
    assert listing[-1] == str(folder)
    code, out, _ = cli(capsys, *listing[1:])
    assert code == 0 and variants[0].name in out


def test_a_sweeps_resume_hint_runs(here, capsys, monkeypatch):
    from bpcli.train import sweep as sw

    (here / "s.yaml").write_text(tiny_spec())
    folder = here / "my sweeps" / "stopped"

    def stopped(folder, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(sw, "run_sweep", stopped)
        code, _, err = cli(capsys, "sweep", "s.yaml", "--out", str(folder))
    assert code == 130
    resume = printed(err, "bpcli sweep --resume", 1)
    assert resume[-1] == str(folder)
    sw.load_plan(Path(resume[-1]))   # what --resume reads first; running it trains (slow tests)


def test_a_folder_holding_a_table_names_it_as_data_pasteably(here, capsys):
    (here / "s.yaml").write_text(tiny_spec(input=[2], data={"val_split": 0.25},
                                           layers=[{"dense": {"units": 1}}]))
    data = here / "my data"
    data.mkdir()
    rows = "\n".join(f"{i % 7},{i % 5},{'yes' if i % 2 else 'no'}" for i in range(40))
    (data / "t 1.csv").write_text("a,b,label\n" + rows + "\n")
    code, _, err = cli(capsys, "train", "s.yaml", "--data", str(data), "--target", "label")
    assert code == 2
    given = printed(err, "--data", 1)
    assert given[-1] == str(data / "t 1.csv")
    run_as_printed(capsys, ["bpcli", "train", "s.yaml", *given, "--target", "label",
                            "--out", "r"])

    # eval of new data without its label column points at predict, with the same quoting
    (data / "new one.csv").write_text("a,b\n" + "\n".join(r.rsplit(",", 1)[0]
                                                          for r in rows.splitlines()) + "\n")
    code, _, err = cli(capsys, "eval", "r", "--data", str(data / "new one.csv"))
    assert code == 2
    predict = printed(err, "bpcli predict RUN --data", 1)
    run_as_printed(capsys, ["bpcli", "predict", "r", *predict[3:], "--out", "p.csv"])


def test_picture_splits_are_named_as_data_and_val_data_pasteably(here, capsys):
    (here / "s.yaml").write_text(tiny_spec(input=[1, 8, 8], data={"val_split": 0.25},
                                           layers=[{"dense": {"units": 2}}],
                                           loss="softmax_cross_entropy"))
    for split in ("train set", "val set"):
        for label in ("cat", "dog"):
            pictures(here / "my pics" / split / label, n=4)
    code, _, err = cli(capsys, "train", "s.yaml", "--data", str(here / "my pics"))
    assert code == 2
    given = printed(err, "--data", 3)
    assert given == ["--data", str(here / "my pics" / "train set"),
                     "--val-data", str(here / "my pics" / "val set")]
    run_as_printed(capsys, ["bpcli", "train", "s.yaml", *given, "--out", "r"])
