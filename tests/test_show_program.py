"""``bpcli show SPEC --program``: the compiled program as text, one line per equation."""

from __future__ import annotations

from pathlib import Path

import bpcli
from bpcli.cli import main

SPECS = Path(__file__).resolve().parent.parent / "specs"


def test_the_printed_program_has_a_line_per_equation_with_shape_and_layer(capsys):
    spec = SPECS / "lecture_cnn.yaml"
    assert main(["show", str(spec), "--program"]) == 0
    out, err = capsys.readouterr()
    model = bpcli.build(spec)
    lines = out.splitlines()
    equations = lines[lines.index("equations") + 1:lines.index("outputs")]
    assert len(equations) == len(model.program.eqns)
    for line, e in zip(equations, model.program.eqns):
        assert f" = {e.prim.name} " in line or line.rstrip().endswith(f"= {e.prim.name}")
        assert line.rstrip().endswith(f"# {e.origin}")
    assert "  X:(N,64)" in lines and "  loss = v21" in lines
    assert err == ""  # nothing but the program on stdout, nothing on stderr


def test_the_training_program_shows_dropout_masks_and_batch_statistics(capsys):
    spec = SPECS / "image_cnn.yaml"
    assert main(["show", str(spec), "--program", "--training"]) == 0
    out = capsys.readouterr().out
    assert ".mask:(N," in out and "batch_moments" in out
    assert main(["show", str(spec), "--program"]) == 0
    assert ".mask" not in capsys.readouterr().out   # evaluation: dropout is the identity


def test_training_without_program_is_a_clear_error(capsys):
    assert main(["show", str(SPECS / "lecture_cnn.yaml"), "--training"]) == 2
    assert "--training: " in capsys.readouterr().err
