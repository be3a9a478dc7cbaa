"""Sweeps: many variants of one spec, trained in parallel, compared in one table and one picture.

A variant is the spec with some key paths set (``optimizer.lr=0.1``, the same
syntax as ``--set``) and a seed. Variants come from a grid (every combination
of ``--grid`` values), random draws (``--random N`` over ``--range`` bounds),
and ``--seeds``. Each runs as a normal run in its own folder inside the sweep
folder. The work is done by local processes (one BLAS thread each, so the cores
are not oversubscribed; with ``--device gpu`` one process per GPU, each seeing
only its own) or by a Dask distributed cluster (GPU variants on workers that
offer a ``GPU`` resource, one at a time on each); either way a task
trains in a scratch folder and sends the run folder's files back, so the sweep
folder looks the same whoever ran it.

A variant whose worker process dies (``kill -9``, the out-of-memory killer, a crash) is
recorded as ``died`` with how it ended; a new process takes the dead one's place and the
others go on; ``--resume`` runs it again, as one interrupted alone.

Files: ``sweep.json`` (the plan: the base spec, the variants), one run folder per
variant, ``sweep.csv`` (a row per variant: varied values, seed, status, final and
best metrics, wall time) and ``sweep.png`` (validation curves coloured by the
varied value; the final metric against each varied value, mean ± spread over seeds).
"""

from __future__ import annotations

import itertools
import json
import math
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..engine.threads import resolve as resolve_threads
from ..errors import InputError
from .executors import DaskExecutor, WorkerDied, as_completed, local_executor, local_gpus
from .run_folder import SWEEP_PLAN, RunFolder, holding
from ..core.document import Spec, parse_path
from ..spec.overrides import with_sets
from ..spec.validate import set_value

EXECUTORS = ("local", "dask")  # who trains the variants: local processes, or a Dask cluster



# ---------------------------------------------------------------- parsing the command line
def _number_or_word(text: str):
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    value = yaml.safe_load(text)  # true/false/null and plain words, never code
    return value


def parse_grid(items: list[str]) -> dict[str, list]:
    grid = {}
    for item in items:
        path, eq, values = item.partition("=")
        if not eq or not path.strip() or not values.strip():
            raise InputError(f"{item!r} is not PATH=V1,V2,... (e.g. --grid optimizer.lr=0.1,0.01)",
                             path="--grid")
        grid[path.strip()] = [_number_or_word(v) for v in values.split(",")]
    return grid


def parse_ranges(items: list[str]) -> dict[str, tuple]:
    ranges = {}
    for item in items:
        path, eq, spec = item.partition("=")
        parts = spec.split(":")
        try:
            if not eq or len(parts) not in (2, 3):
                raise ValueError
            low, high = float(parts[0]), float(parts[1])
            scale = parts[2] if len(parts) == 3 else "linear"
            if scale not in ("linear", "log", "int") or low >= high or (scale == "log" and low <= 0):
                raise ValueError
        except ValueError:
            raise InputError(f"{item!r} is not PATH=LOW:HIGH[:linear|log|int] with LOW < HIGH "
                             f"(and LOW > 0 for log), e.g. --range optimizer.lr=1e-4:1:log",
                             path="--range") from None
        ranges[path.strip()] = (low, high, scale)
    return ranges


def check_paths(spec: Spec, paths: dict[str, str]) -> None:
    """Every path (-> the option that gave it, ``--grid``) must name a key the resolved spec has:
    unknown paths are refused up front, with --set's did-you-mean."""
    for path, option in paths.items():
        try:
            with_sets(spec.data, [f"{path}=null"])  # only the key path is checked, as --set does
        except InputError as e:
            e.path = f"{option} {path}"
            raise
        try:
            set_value(spec, path, _current(spec.data, path))
        except (KeyError, IndexError, TypeError):
            raise InputError(f"{path!r} is not a key path of this spec (e.g. optimizer.lr, "
                             f"training.batch_size, layers[0].conv1d.kernel)", file=spec.file,
                             path=path) from None


def check_values(spec: Spec, grid: dict, ranges: dict) -> None:
    """Each --grid value and --range bound set into ``spec`` alone: a value its own key refuses
    (optimizer.lr=-1) is a mistake in the command, refused before the sweep folder exists.
    A value that is fine by itself but impossible with the rest of the spec (stride 2 with pad
    same) is an outcome of the sweep: that variant fails alone."""
    given = [(path, v, "--grid") for path, values in grid.items() for v in values]
    given += [(path, int(v) if scale == "int" else v, "--range")
              for path, (low, high, scale) in ranges.items() for v in (low, high)]
    for path, value, option in given:
        try:
            set_value(spec, path, value)
        except InputError as e:
            if _key(e.path or "") == _key(path):
                raise InputError(e.message, path=f"{option} {path}={value}") from None


def check_shared(spec: Spec, data, target, varied) -> None:
    """Prepare ``spec`` (with its --set values, before any variant's) once, here, and raise its
    InputError unless a varied path could change the key it names: such an error (the data,
    a layer that does not fit the data's classes) would fail every variant alike, so it is
    refused before the sweep folder exists. Errors at a varied key are left to the variants
    (a grid over the batch size may include one that gd refuses)."""
    from . import run

    try:
        run.prepare(spec, data, target, device="cpu")  # where it trains is each variant's affair
    except InputError as e:
        key = _key(e.path or "")
        if key and any(key[:len(v)] == v or v[:len(key)] == key for v in map(_key, varied)):
            return
        raise


def _key(path: str) -> tuple:
    """A key path as the spec's parser reads it (``parse_path``), indices as numbers whether
    written layers[2] or layers.2, for comparing paths part by part (layers[1] is no prefix
    of layers[10])."""
    return tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in parse_path(path))


def _current(data, path):
    node = data
    for part in parse_path(path):
        if isinstance(node, dict) and isinstance(part, str) and part not in node:
            raise KeyError(part)
        node = node[part]
    return node


# ---------------------------------------------------------------- the plan
@dataclass
class Variant:
    index: int
    values: dict        # path -> value
    seed: int
    name: str           # its run folder: the index, then what varies (short numbers)


def short(values: list) -> dict:
    """repr(value) -> its text in a name: floats to 3 significant digits, more where two distinct
    values would otherwise read the same (``0.008144886973076106`` -> ``0.00814``)."""
    floats = {v for v in values if isinstance(v, float)}
    for digits in range(3, 18):
        text = {repr(v): f"{v:.{digits}g}" for v in floats}
        if len(set(text.values())) == len(floats):
            break
    return {repr(v): text.get(repr(v), str(v)) for v in values}


def name_variants(combos: list[dict], seeds: list[int]) -> list[str]:
    """One name per (combo, seed), in order: ``003_lr=0.00814_batch_size=16_seed=1``; only a path
    whose value differs between combos, and the seed only when there are several, name it."""
    varied = [p for p in dict.fromkeys(k for c in combos for k in c)
              if len({repr(c.get(p)) for c in combos}) > 1]
    texts = {p: short([c.get(p) for c in combos]) for p in varied}
    names = []
    for combo in combos:
        for seed in seeds:
            parts = [f"{p.split('.')[-1]}={texts[p][repr(combo.get(p))]}" for p in varied]
            parts += [f"seed={seed}"] if len(seeds) > 1 else []
            names.append("_".join([f"{len(names):03d}", *parts]).replace("/", "-"))
    return names


def plan(spec: Spec, grid: dict, ranges: dict, n_random: int, seeds: int, seed: int) -> list[Variant]:
    """Grid × random draws × seeds, in a fixed order."""
    if ranges and not n_random:
        raise InputError("--range needs --random N (how many values to draw)", path="--range")
    combos = [dict(zip(grid, vals)) for vals in itertools.product(*grid.values())] or [{}]
    if n_random:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(n_random):
            d = {}
            for path, (low, high, scale) in ranges.items():
                if scale == "log":
                    d[path] = float(math.exp(rng.uniform(math.log(low), math.log(high))))
                elif scale == "int":
                    d[path] = int(rng.integers(int(low), int(high) + 1))
                else:
                    d[path] = float(rng.uniform(low, high))
            draws.append(d)
        combos = [dict(c, **d) for c in combos for d in draws]
    seed_list = [spec.data["seed"] + k for k in range(seeds)]
    names = iter(name_variants(combos, seed_list))
    return [Variant(i, combo, s, next(names))
            for i, (combo, s) in enumerate((c, s) for c in combos for s in seed_list)]


# ---------------------------------------------------------------- one task
def run_variant(spec_data: dict, spec_file: str | None, values: dict, seed: int,
                data: str | None, target: str | None, threads: int | None = None,
                shipped: dict | None = None, device: str | None = None) -> dict:
    """Train one variant in a scratch folder; return its status, summary and the run files' bytes.

    Runs in a worker process or on a Dask worker: everything it needs comes in as plain data,
    everything it made goes back as plain data. ``shipped`` is the data itself (file name ->
    bytes, from :func:`ship_data`), for a worker that does not share the client's disk: it is
    written into the scratch folder and trained on there, and the run folder still names
    ``data`` (the client's path), as a local sweep's does. ``threads``: the batch-slice workers
    of this variant (as ``bpcli train --threads``; any count gives the same bits).
    ``device``: where it trains (as ``bpcli train --device``; None: its spec's training.device);
    a GPU worker sees the one GPU it was given as its only one.
    """
    from . import run
    from ..engine.memory import keep_freed_memory
    from ..errors import CheckFailed, Interrupted
    from ..spec.validate import validate

    keep_freed_memory()  # a worker process, as the command line does

    t0 = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="bpcli-sweep-"))
    # scratch: the worker's folder for the run, which messages name; the client puts its own
    result = {"status": "ok", "message": "", "summary": None, "files": {},
              "scratch": str(scratch / "run")}
    try:
        spec = validate(dict(spec_data), file=spec_file, positions={},
                        default_name=spec_data["name"])
        for path, value in values.items():
            spec = set_value(spec, path, value)
        spec = set_value(spec, "seed", seed)
        local = data if shipped is None else unpack_data(shipped, data, scratch / "data")
        p = run.prepare(spec, local, target, device=device)
        result["summary"] = run.execute(p, scratch / "run", command="bpcli sweep",
                                        threads=threads, device=device)
        if shipped is not None:   # name the client's file, not the worker's copy of it
            _renamed_data(RunFolder(scratch / "run"), p.model.spec, data)
    except InputError as e:
        result.update(status="failed", message=str(e))
    except CheckFailed as e:
        result.update(status="diverged", message=str(e))
    except Interrupted as e:  # this worker alone got SIGINT or SIGTERM: not done, resume reruns it
        result.update(status="interrupted", message=str(e))
    except Exception as e:  # a bug in one variant must not stop the others; it is reported
        result.update(status="error", message=f"{type(e).__name__}: {e}")
    finally:
        run_dir = scratch / "run"
        if run_dir.is_dir():
            result["files"] = {f.name: f.read_bytes() for f in run_dir.iterdir() if f.is_file()}
        shutil.rmtree(scratch, ignore_errors=True)
    result["wall_s"] = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------- the data, sent to workers
def ship_data(data: str | None) -> dict | None:
    """The data file (or each file of a data folder) as bytes by name: what a Dask worker that
    does not share this disk trains on. None for a sweep on the spec's builtin data."""
    if data is None:
        return None
    path = Path(data)
    files = sorted(f for f in path.iterdir() if f.is_file()) if path.is_dir() else [path]
    return {f.name: f.read_bytes() for f in files}


def unpack_data(shipped: dict, data: str, folder: Path) -> Path:
    """Write shipped data into ``folder``; the path to train on (a file, or the folder itself)."""
    folder.mkdir(parents=True)
    for name, content in shipped.items():
        (folder / name).write_bytes(content)
    return folder if Path(data).is_dir() or len(shipped) != 1 or Path(data).name not in shipped \
        else folder / Path(data).name


def _renamed_data(run: RunFolder, spec: Spec, data: str) -> None:
    """Point the run folder's spec.yaml and summary.json at the client's data path."""
    run.write_spec(set_value(spec, "data.path", str(Path(data).resolve())))
    summary = run.read_summary()
    if summary is not None:
        run.write_json(run.summary, dict(summary, data=str(data)))


# ---------------------------------------------------------------- the sweep
def new_sweep(spec: Spec, variants: list[Variant], out: Path, data, target,
              threads: int | None = None, device: str | None = None) -> Path:
    folder = RunFolder.create(out).path
    plan_ = {"spec": spec.data, "spec_file": spec.file,
             "data": None if data is None else str(Path(data).resolve()), "target": target,
             # each variant on 1 thread unless told: the --workers processes share the cores
             "threads": resolve_threads(threads or 1), "device": device,
             "variants": [{"index": v.index, "values": v.values, "seed": v.seed, "name": v.name}
                          for v in variants]}
    (folder / SWEEP_PLAN).write_text(json.dumps(plan_, indent=2) + "\n")
    return folder


def remove_unstarted(folder: Path) -> None:
    """Remove a new sweep's folder that holds its plan alone: a sweep refused before its first
    variant ran (an unreachable scheduler, no GPU workers) leaves nothing behind."""
    folder = Path(folder)
    if [f.name for f in folder.iterdir()] == [SWEEP_PLAN]:
        (folder / SWEEP_PLAN).unlink()
        folder.rmdir()


def load_plan(folder: Path):
    path = Path(folder) / SWEEP_PLAN
    if not path.exists():
        raise InputError(f"not a sweep folder: it has no {SWEEP_PLAN}", file=str(folder))
    try:
        p = json.loads(path.read_text())
    except ValueError as e:
        raise InputError(f"damaged: cut short or overwritten after bpcli wrote it whole ({e}); "
                         f"the sweep's plan is lost with it: run the sweep again",
                         file=str(path)) from None
    variants = [Variant(v["index"], v["values"], v["seed"], v["name"]) for v in p["variants"]]
    return p, variants


def variant_device(p: dict, v: Variant) -> str:
    """Where a variant trains: the sweep's --device, else its own training.device (a grid may
    vary it), else the spec's."""
    return (p.get("device") or v.values.get("training.device")
            or p["spec"]["training"]["device"])


@holding("sweep")  # one process runs a sweep folder: a second --resume is refused, naming it
def run_sweep(folder: Path, *, workers: int, executor: str = "local", scheduler: str | None = None,
              echo=print) -> list[dict]:
    """Run every variant of the sweep in ``folder`` that has no finished run folder yet. GPU
    variants run one per GPU: on local worker processes each given one GPU, or on Dask workers
    offering a ``GPU`` resource."""
    p, variants = load_plan(folder)
    todo = [v for v in variants if not _finished(folder, v)]
    on_gpu = {v.index: variant_device(p, v) == "gpu" for v in todo}
    if executor == "dask":
        pool = DaskExecutor(scheduler)
        where = f"Dask at {scheduler}"
        if any(on_gpu.values()):
            where += f" ({pool.check_gpus()} GPUs, one variant each at a time)"
    else:
        gpus = local_gpus() if any(on_gpu.values()) else None
        pool = local_executor(workers, gpus)
        where = (f"{min(workers, len(gpus))} local processes, one GPU each" if gpus
                 else f"{workers} local processes")
    # a Dask worker may not share this disk: the data goes to every worker once, through Dask
    shipped = pool.share(ship_data(p["data"])) if executor == "dask" and p["data"] else None
    echo(f"{len(variants)} variants, {len(variants) - len(todo)} already done, running {len(todo)} "
         f"on {where}" + (" (the data sent to every worker)" if shipped is not None else ""))
    futures = {}
    try:
        for v in todo:
            gpu = {"gpu": on_gpu[v.index]} if executor == "dask" else {}
            futures[pool.submit(run_variant, p["spec"], p["spec_file"], v.values, v.seed,
                                p["data"], p["target"], p.get("threads"), shipped,
                                p.get("device"), **gpu)] = v
        for fut in as_completed(list(futures), pool):
            v = futures[fut]
            try:
                result = pool.result(fut)
            except WorkerDied as e:   # killed (kill -9, out of memory) or crashed: this one alone
                result = {"status": "died", "message": f"worker died: {e}", "files": {},
                          "wall_s": e.wall_s}
            status = _store(folder, v, result)
            echo(f"  {v.name}: {status['status']}" + (f" ({status['message'].splitlines()[0]})"
                                                      if status["message"] else ""))
    except KeyboardInterrupt:
        # Ctrl-C reached the workers too; a SIGTERM (or SIGINT) sent to this process alone did
        # not, and shutdown would wait for their variants: they are told to stop, as at Ctrl-C
        pool.stop()
        write_table(folder)
        raise
    pool.shutdown()
    return write_table(folder)


AGAIN = ("interrupted", "died")  # outcomes that are not the variant's: --resume runs it again


def _finished(folder: Path, v: Variant) -> bool:
    """Whether variant ``v`` has run to an outcome (ok, failed, diverged, error): one that was
    interrupted on its own, or whose worker died, is run again by --resume, as one never
    started."""
    run = RunFolder(folder / v.name)
    return run.status.exists() and run.read_json(run.status)["status"] not in AGAIN


def _store(folder: Path, v: Variant, result: dict) -> dict:
    """Write variant ``v``'s files and status.json into its folder; the status. A message
    naming the worker's scratch folder ("the run so far is in ...") names this one instead."""
    run = RunFolder(folder / v.name)
    run.path.mkdir(exist_ok=True)
    for old in run.path.iterdir():  # an interrupted attempt's files: this one's replace them all
        if old.is_file():
            old.unlink()
    for name, content in result["files"].items():
        run.file(name).write_bytes(content)
    scratch = result.get("scratch")  # a worker of an older bpcli sends none
    message = result["message"]
    if scratch:   # a pasteable hint names it quoted (a sweep folder with a space in its name)
        message = (message.replace(shlex.quote(scratch), shlex.quote(str(run.path)))
                   .replace(scratch, str(run.path)))
    status = {"status": result["status"], "message": message, "wall_s": result["wall_s"]}
    # written last: its presence marks the variant as finished for --resume
    run.write_json(run.status, status)
    return status


def write_table(folder: Path) -> list[dict]:
    """sweep.csv and sweep.png from whatever variants have finished."""
    import pandas as pd

    p, variants = load_plan(folder)
    rows = []
    for v in variants:
        run = RunFolder(folder / v.name)
        if not run.status.exists():
            continue
        status = run.read_json(run.status)
        row = {"index": v.index, **v.values,
               "seed": v.seed, "status": status["status"], "wall_s": round(status["wall_s"], 3)}
        if run.summary.exists():
            state = run.state()
            row.update(state.final_row(), steps=state.steps)
        row["run"] = v.name
        row["message"] = status["message"]
        rows.append(row)
    table = pd.DataFrame(rows)
    if "steps" in table:  # a count, also where a failed variant has none (not 5.0 for 5)
        table["steps"] = table["steps"].astype("Int64")
    table.to_csv(folder / "sweep.csv", index=False)
    if rows:
        from ..explain.plots import plot_sweep

        curves = {r["run"]: RunFolder(folder / r["run"]).read_metrics() for r in rows
                  if RunFolder(folder / r["run"]).metrics.exists()}
        plot_sweep(rows, curves, list(variants[0].values) if variants else [], folder / "sweep.png")
    return rows

