"""How many threads a training step wants: 1 against all cores, quiet and under load.

For each shipped spec, and the two imaging networks of benchmarks/cores.py (cnn128: 1×128×128,
cnn96: 3×96×96, three conv/batchnorm/relu/max-pool blocks, batch 32), a training step (forward and backward, training mode) on one batch
of its batch size is timed at 1 thread and at every core (``bpcli.engine.threads.limit``: the
engine's batch-slice workers, BLAS at 1 thread), first
on a quiet machine, then while other processes keep cores busy (a "loaded" machine,
as a shared one is; --busy sets how many). Rounds alternate between the settings so drift hits both alike; the
medians and their ratio are printed; a loaded row's ``slowdown`` is its 1-thread step over the
quiet one (the two passes run one after the other, so slow drift of the machine lands in it).
``bpcli.engine.threads.default`` comes from this table (benchmarks/README.md quotes it).

    .venv/bin/python benchmarks/threads.py [--rounds 7] [--batch 256] [--busy 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import bpcli
from bpcli.engine.memory import keep_freed_memory
from bpcli.engine.threads import available, limit
from bpcli.explain.gradcheck import random_batch

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml"))


def imaging_specs(folder: Path) -> list[Path]:
    """cores.py's two imaging networks, written as spec files into ``folder``."""
    import yaml
    from cores import cnn_spec

    out = []
    for name, shape in (("cnn128", [1, 128, 128]), ("cnn96", [3, 96, 96])):
        out.append(folder / f"{name}.yaml")
        out[-1].write_text(yaml.safe_dump(cnn_spec(name, shape), sort_keys=False))
    return out
BUSY = "import numpy as np\nx = np.ones(10**6)\nwhile True:\n    x = np.sqrt(x + 1.0)\n"


def step_seconds(model, X, y, masks, steps):
    start = time.perf_counter()
    for _ in range(steps):
        model.step(X, y, train=True, masks=masks)
    return (time.perf_counter() - start) / steps


def measure(spec, rounds, settings, batch=None):
    model = bpcli.build(spec)
    bs = model.spec.data["training"]["batch_size"]
    n = batch or (256 if bs == "full" else bs)
    X, y = model.prepare(*random_batch(model, n, 0))
    masks = model.draw_masks(n, np.random.default_rng(0))
    with limit(1):
        model.step(X, y, train=True, masks=masks)        # warm up plans and caches
        steps = max(1, int(0.2 / max(step_seconds(model, X, y, masks, 1), 1e-6)))
    times = {t: [] for t in settings}
    for _ in range(rounds):
        for t in settings:
            with limit(t):
                times[t].append(step_seconds(model, X, y, masks, steps))
    return n, {t: statistics.median(v) for t, v in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=None, help="every spec at this batch size "
                        "[default: each spec's own]")
    parser.add_argument("--busy", type=int, default=2, help="busy processes in the loaded rows")
    args = parser.parse_args(argv)
    cores = available()
    settings = sorted({1, cores})
    print(f"{cores} cores; ms per training step, median of {args.rounds} alternating rounds")
    print(f"{'spec':<20} {'batch':>5} {'load':<7} " + " ".join(f"{f'{t} thr':>9}" for t in settings)
          + f" {'1 / all':>8} {'slowdown':>8}")
    quiet = {}   # spec -> median step at 1 thread, quiet: the loaded rows' slowdown is over it
    specs = SPECS + imaging_specs(Path(tempfile.mkdtemp()))
    for load in ("quiet", "loaded"):
        busy = [subprocess.Popen([sys.executable, "-c", BUSY])
                for _ in range(args.busy if load == "loaded" else 0)]
        try:
            for spec in specs:
                n, med = measure(spec, args.rounds, settings, args.batch)
                ratio = med[1] / med[settings[-1]]
                quiet.setdefault(spec, med[1])
                print(f"{spec.stem:<20} {n:>5} {load:<7} "
                      + " ".join(f"{1e3 * med[t]:>9.3f}" for t in settings) + f" {ratio:>8.2f}"
                      + (f" {med[1] / quiet[spec]:>8.2f}" if load == "loaded" else ""),
                      flush=True)
        finally:
            for p in busy:
                p.kill()
                p.wait()


if __name__ == "__main__":
    keep_freed_memory()  # as the command line does (bpcli/engine/memory.py)
    main()
