"""Re-make every picture in docs/ with the bpcli commands a user types, and print what the docs quote.

    python docs/figures.py [NAME.png ...]        # make figures: all of them; or only those named

Each figure is one or more ``bpcli`` commands run in a scratch folder (``specs/`` linked in, so
the commands and their output read exactly as in the docs); the picture a command leaves there is
copied into docs/. Every command's output is printed as the terminal shows it, then the numbers
the README and docs quote (final accuracies, epochs, seconds) read back from the run's
summary.json and metrics.csv. ``step_times.png`` is redrawn from benchmarks/results/step_times.csv
by the benchmark's own plot (``make bench`` re-times it first). Pictures come from bpcli's own
plotting (bpcli/explain/plots.py, graphs.py, layer_table.py, train/sweep.py), so they show what
users see. Exit code: 1 if any command fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXPRESSION = "ln(x1) + x1*x2 - sin(x2)"   # the lecture's worked example


@dataclass(frozen=True)
class Figure:
    """One picture in docs/: the bpcli commands that make it and where they leave it."""

    png: str                          # its name in docs/
    commands: tuple[tuple[str, ...], ...]   # bpcli arguments, run in order in the scratch folder
    made: str                         # the picture the commands leave, relative to that folder
    run: str | None = None            # a run (or sweep) folder whose final metrics the docs quote
    also: tuple[tuple[str, str], ...] = ()  # (another picture the commands leave, its docs/ name)

    @property
    def pictures(self) -> tuple[str, ...]:
        """Every name in docs/ this figure writes."""
        return (self.png, *(png for _, png in self.also))


FIGURES = (
    Figure("lecture_cnn_loss.png", (("train", "specs/lecture_cnn.yaml"),),   # what make demo runs
           "runs/lecture-cnn/loss.png", run="runs/lecture-cnn"),
    Figure("pulse_cnn_loss.png", (("train", "specs/pulse_cnn.yaml"),),
           "runs/pulse-cnn/loss.png", run="runs/pulse-cnn"),
    Figure("image_cnn_loss.png", (("train", "specs/image_cnn.yaml"),),
           "runs/image-cnn/loss.png", run="runs/image-cnn"),
    Figure("lecture_graphs.png", (("graph", EXPRESSION, "--out", "graphs.png"),), "graphs.png"),
    # docs/images.md: a segmentation and a restoration, each its curve and a grid of predictions
    Figure("unet_shapes_predictions.png",
           (("train", "specs/unet_shapes.yaml"),
            ("eval", "runs/unet-shapes", "--plot", "unet_grid.png")),
           "unet_grid.png", run="runs/unet-shapes",
           also=(("runs/unet-shapes/loss.png", "unet_shapes_loss.png"),)),
    Figure("denoiser_shapes_predictions.png",
           (("train", "specs/denoiser_shapes.yaml"),
            ("eval", "runs/denoiser-shapes", "--plot", "denoiser_grid.png")),
           "denoiser_grid.png", run="runs/denoiser-shapes",
           also=(("runs/denoiser-shapes/loss.png", "denoiser_shapes_loss.png"),)),
    Figure("resnet_block_graph.png",   # docs/writing-specs.md#graphs
           (("graph", "graphs/resnet_block.yaml", "--out", "resnet_block.png"),), "resnet_block.png"),
    Figure("unet_graph.png", (("graph", "graphs/unet.yaml", "--out", "unet.png"),), "unet.png"),
    Figure("lecture_toeplitz_w1.png",
           (("inspect", "specs/lecture_cnn.yaml", "--toeplitz", "0", "--out", "W1.png"),), "W1.png"),
    Figure("gradcheck_sweep.png",
           (("gradcheck", "specs/lecture_cnn.yaml", "--sweep"),), "gradcheck_sweep.png"),
    Figure("pulse_sweep.png",
           (("sweep", "specs/pulse_cnn.yaml", "--grid", "optimizer.lr=0.01,0.003,0.001",
             "--grid", "training.batch_size=16,64", "--seeds", "2"),
            ("runs", "runs/pulse-cnn-sweep")),
           "runs/pulse-cnn-sweep/sweep.png", run="runs/pulse-cnn-sweep"),
    Figure("step_times.png", (), "step_times.png"),   # drawn from the committed benchmark table
)

# numbers the docs quote without a picture: (bpcli commands, the run folder they leave)
NUMBERS = (
    ((("init", "--template", "cnn2d", "--out", "cnn2d.yaml"), ("train", "cnn2d.yaml", "-q")),
     "runs/cnn2d"),                                       # docs/writing-specs.md
)


def bpcli(args, cwd: Path) -> int:
    """Run ``bpcli ARGS`` in ``cwd`` and print what it prints (stderr too: a terminal shows both)."""
    exe = Path(sys.executable).with_name("bpcli")
    print("$ bpcli " + " ".join(f'"{a}"' if " " in a else a for a in args), flush=True)
    done = subprocess.run([str(exe if exe.exists() else shutil.which("bpcli")), *args], cwd=cwd,
                          env={**os.environ, "COLUMNS": "120"},   # tables as a wide terminal shows them
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(done.stdout, end="", flush=True)
    return done.returncode


def quoted_numbers(run: Path) -> str:
    """What the docs quote of a run (final validation accuracy and loss, epochs, seconds) or of a
    sweep (its final validation accuracy averaged over the variants with each varied value)."""
    import pandas as pd

    if (run / "sweep.csv").exists():
        table = pd.read_csv(run / "sweep.csv")
        varied = list(json.loads((run / "sweep.json").read_text())["variants"][0]["values"])
        means = [f"{path} {value}: {100 * acc:.1f}%" for path in varied
                 for value, acc in table.groupby(path)["final_val_accuracy"].mean().items()]
        return f"{run.name}: mean final val_accuracy by " + ", ".join(means)
    s = json.loads((run / "summary.json").read_text())
    final = s["final"]
    acc = final.get("val_accuracy")
    line = (f"{run.name}: {s['epochs']} epochs in {s['elapsed_s']:.1f} s; val_loss "
            f"{final['val_loss']:.4f}" + ("" if acc is None else f", val_accuracy {100 * acc:.1f}%"))
    if acc is not None and run.name == "image-cnn":
        # tests/test_image_cnn.py trains the first 12 epochs (the same steps: a constant lr)
        m = pd.read_csv(run / "metrics.csv").set_index("epoch")
        line += f"; after epoch 12: val_accuracy {100 * m.loc[12, 'val_accuracy']:.1f}%"
    return line


def step_times(out: Path) -> None:
    """Redraw the benchmark picture from benchmarks/results/step_times.csv with bench.py's plot."""
    import pandas as pd

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench

    table = ROOT / "benchmarks" / "results" / "step_times.csv"
    rows = [{k: v for k, v in r.items() if pd.notna(v)}      # a missing torch column stays missing
            for r in pd.read_csv(table).to_dict("records")]
    bench.plot(rows, out)
    print(f"step times redrawn from {table.relative_to(ROOT)} (make bench re-times them); "
          "milliseconds per step, as benchmarks/README.md quotes them:")
    ms = lambda v: f"{v:#.3g}".rstrip(".")   # noqa: E731  (three significant digits, 0.680 kept)
    for r in rows:
        print(f"| {r['network']} | {r['dtype']} | {r['batch']} | {ms(r['bpcli_ms'])} | "
              f"{ms(r['hand_ms'])} | " + (f"{ms(r['torch_ms'])} | " if "torch_ms" in r else "— | ")
              + f"{r['bpcli/hand']:.2f} | "
              + (f"{r['bpcli/torch']:.2f} |" if "bpcli/torch" in r else "— |"))
    epoch = json.loads((ROOT / "benchmarks" / "results" / "epoch.json").read_text())
    print("pulse_cnn epoch: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in epoch["share"].items())
          + f"; data + optimizer {100 * epoch['data_and_optimizer']:.1f}%; memory grew "
          f"{epoch['peak_rss_mb'] - epoch['rss_before_mb']:.0f} MB, {epoch['growth_over_needed']}x "
          f"the {epoch['needed_mb']} MB of data + parameters + one batch")


def make(fig: Figure, scratch: Path) -> bool:
    start = time.perf_counter()
    print(f"\n=== docs/{fig.png}", flush=True)
    if fig.png == "step_times.png":
        step_times(scratch / fig.made)
    for args in fig.commands:
        if bpcli(args, scratch) != 0:
            print(f"FAILED: docs/{fig.png} not made")
            return False
    shutil.copyfile(scratch / fig.made, DOCS / fig.png)
    for made, png in fig.also:
        shutil.copyfile(scratch / made, DOCS / png)
    if fig.run:
        print("quoted: " + quoted_numbers(scratch / fig.run))
    print(f"wrote docs/{fig.png} ({time.perf_counter() - start:.1f} s)")
    return True


def main(argv=None) -> int:
    names = list(sys.argv[1:] if argv is None else argv)
    known = {f.png for f in FIGURES}
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown figure {', '.join(unknown)}; known: {', '.join(sorted(known))}",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bpcli-figures-") as tmp:
        scratch = Path(tmp)
        (scratch / "specs").symlink_to(ROOT / "specs", target_is_directory=True)
        (scratch / "graphs").symlink_to(DOCS / "graphs", target_is_directory=True)
        ok = [make(f, scratch) for f in FIGURES if not names or f.png in names]
        for commands, run in () if names else NUMBERS:
            print(f"\n=== numbers: {run}", flush=True)
            ok.append(all(bpcli(args, scratch) == 0 for args in commands))
            if ok[-1]:
                print("quoted: " + quoted_numbers(scratch / run))
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
