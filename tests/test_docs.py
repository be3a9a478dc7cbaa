"""The README stays true: its spec reference is the one the code generates, its specs load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bpcli
from bpcli.spec.reference import BEGIN, END, markdown

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_spec_reference_is_generated_from_the_tables():
    start, end = README.index(BEGIN), README.index(END) + len(END)
    assert README[start:end] == markdown(), "run: python -m bpcli.reference and paste into README.md"


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_builds(spec):
    assert bpcli.build(spec).n_params() > 0


def test_readme_images_exist():
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / image).is_file(), image


def test_readme_names_every_command():
    from bpcli.cli import app

    for cmd in app.registered_commands:
        name = cmd.name or cmd.callback.__name__
        assert f"bpcli {name}" in README, name
