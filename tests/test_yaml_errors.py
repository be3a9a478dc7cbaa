"""A YAML syntax error reads as what is wrong, where the culprit is (for an unclosed bracket or
quote, where it was opened, not where the parser gave up), and both places as lines with a
caret under the column: one paragraph, exit code 2, through bpcli validate."""

from __future__ import annotations

import pytest

from bpcli.cli import main

# the tiny pulse detector, one key a line (line 4 is data, line 6 the first layer)
GOOD = """name: tiny
input: [32]
seed: 0
data: {builtin: pulses, n: 200, val_split: 0.25}
layers:
  - conv1d: {channels: 4, kernel: 5, pad: same}
  - relu
  - dense: {units: 1}
loss: logistic
optimizer: {name: adam, lr: 0.01}
training: {epochs: 3, batch_size: 32}
"""

# name: (the change to GOOD, where the error is, what it says, the lines shown with their carets)
CASES = {
    "unclosed flow mapping": (
        ("data: {builtin: pulses, n: 200, val_split: 0.25}", "data: {builtin: pulses, n: 200"),
        "4:7", ["this flow mapping '{' is not closed", "no '}' before line 5, column 7",
                "expected ',' or '}', but got ':'"],
        ["  4 | data: {builtin: pulses, n: 200\n    |       ^ opened here",
         "  5 | layers:\n    |       ^ the parser gave up here"]),
    "unclosed flow sequence": (
        ("input: [32]", "input: [32"),
        "2:8", ["this flow sequence '[' is not closed", "no ']' before line 3, column 5"],
        ["  2 | input: [32\n    |        ^ opened here",
         "  3 | seed: 0\n    |     ^ the parser gave up here"]),
    "unclosed flow mapping inside a sequence": (
        ("  - conv1d: {channels: 4, kernel: 5, pad: same}", "  - conv1d: {channels: 4, kernel: 5"),
        "6:13", ["this flow mapping '{' is not closed", "before line 8, column 10"],
        ["  6 |   - conv1d: {channels: 4, kernel: 5\n    |             ^ opened here"]),
    "unclosed double quote": (
        ("name: tiny", 'name: "tiny'),
        "1:7", ['this quoted string is not closed: no closing " before the end of the file'],
        ['  1 | name: "tiny\n    |       ^ opened here', "(the end of the file)"]),
    "unclosed single quote": (
        ("loss: logistic", "loss: 'logistic"),
        "9:7", ["this quoted string is not closed: no closing ' before the end of the file"],
        ["  9 | loss: 'logistic\n    |       ^ opened here"]),
    "key indented off its siblings": (
        ("loss: logistic", " loss: logistic"),
        "9:2", ["indented to fit no key", "the mapping begun at line 1, column 1",
                "a key indented differently from its siblings"],
        ["  1 | name: tiny\n    | ^ the mapping begins here",
         "  9 |  loss: logistic\n    |  ^ the parser gave up here"]),
    "list item indented off its siblings": (
        ("  - relu", " - relu"),
        "7:2", ["indented to fit no key", "a '- ' item indented differently"],
        ["  7 |  - relu\n    |  ^ the parser gave up here"]),
    "key indented as a list item": (
        ("loss: logistic", "  loss: logistic"),
        "9:3", ["indented to fit no item", "the list begun at line 6, column 3",
                "a key where a '- ' item should be"],
        ["  6 |   - conv1d: {channels: 4, kernel: 5, pad: same}\n    |   ^ the list begins here",
         "  9 |   loss: logistic\n    |   ^ the parser gave up here"]),
    "tab indentation": (
        ("  - relu", "\t- relu"),
        "7:1", ["a tab character: YAML indents and separates with spaces only"],
        ["  7 | →- relu\n    | ^ the parser gave up here"]),
    "a value holding ': '": (
        ("name: tiny", "name: tiny: net"),
        "1:11", ["quote a value that holds ': '"],
        ["  1 | name: tiny: net\n    |           ^ the parser gave up here"]),
    "a key without ':'": (
        ("seed: 0", "seed: 0\n{seed"),
        "4:1", ["this key has no ':' after it"],
        ["  4 | {seed\n    | ^ the key begins here"]),
    "two documents": (
        ("seed: 0", "seed: 0\n---"),
        "4:1", ["a spec is one YAML document, but a second one starts here"],
        ["  4 | ---\n    | ^ the parser gave up here"]),
    "an unknown escape": (
        ("name: tiny", 'name: "ti\\ny\\q"'),
        "1:14", ["found unknown escape character 'q'", "write a backslash as \\\\"],
        ['  1 | name: "ti\\ny\\q"\n    |       ^      ^ the parser gave up here']),
}


@pytest.mark.parametrize("case", CASES)
def test_a_yaml_syntax_error_names_its_culprit_and_shows_both_places(case, workdir, capsys):
    (old, new), where, says, shown = CASES[case]
    assert old in GOOD
    (workdir / "bad.yaml").write_text(GOOD.replace(old, new, 1))
    assert main(["validate", "bad.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bpcli: error: bad.yaml:{where}: invalid YAML: "), err
    for fragment in says + shown:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    assert "Traceback" not in err and "\n\n" not in err.strip()   # one paragraph


def test_the_good_spec_validates(workdir, capsys):
    (workdir / "good.yaml").write_text(GOOD)
    assert main(["validate", "good.yaml"]) == 0


def test_a_duplicate_key_is_still_reported_at_its_second_place(workdir, capsys):
    (workdir / "bad.yaml").write_text(GOOD.replace("seed: 0", "seed: 0\nseed: 1"))
    assert main(["validate", "bad.yaml"]) == 2
    assert "bad.yaml:4:1: seed: key 'seed' appears twice" in capsys.readouterr().err
