"""The README and docs/ stay true: generated parts are current, links and pictures resolve, the
README stays a front door, its Python runs, and every shipped spec loads."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

import bpcli
from bpcli.spec.reference import COMMAND, document

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")       # [text](target) and ![alt](target)
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def _prose(page: Path) -> str:
    """The page without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def _figures():
    """docs/figures.py's FIGURES (docs/ is not a package: loaded from its path)."""
    spec = importlib.util.spec_from_file_location("docs_figures", ROOT / "docs" / "figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # its dataclass looks its module up while defined
    spec.loader.exec_module(module)
    return module.FIGURES


def test_spec_reference_is_generated_from_the_tables():
    written = (ROOT / "docs" / "spec-reference.md").read_text(encoding="utf-8")
    assert written == document(), f"docs/spec-reference.md is stale: run make docs ({COMMAND})"


def test_readme_is_a_front_door_of_at_most_300_lines():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 300, f"README.md has {lines} lines; move the manual into docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_that_exists(page):
    broken = []
    for target in LINK.findall(_prose(page)):
        if re.match(r"[a-z]+:", target):                  # https:, mailto: leave the repository
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target} (no heading with that anchor)")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_every_picture_in_the_docs_is_made_by_the_figures_script():
    made = {(ROOT / "docs" / png).resolve() for f in _figures() for png in f.pictures}
    shown = {(page.parent / target).resolve() for page in PAGES
             for target in IMAGE.findall(_prose(page)) if not re.match(r"[a-z]+:", target)}
    assert not shown - made, f"not made by docs/figures.py: {sorted(map(str, shown - made))}"
    on_disk = set((ROOT / "docs").glob("*.png"))
    assert {p.resolve() for p in on_disk} == made, "docs/*.png and docs/figures.py's FIGURES differ"


def test_readme_python_runs_as_written(monkeypatch):
    # the README's Python blocks are one session: run them in order, from the repository root
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"),
                        flags=re.S | re.M)
    assert blocks, "README.md has no Python example"
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)   # noqa: S102


def test_readme_quotes_the_lecture_spec_as_the_file_holds_it():
    spec = (ROOT / "specs" / "lecture_cnn.yaml").read_text(encoding="utf-8")
    assert f"```yaml\n{spec}```" in README.read_text(encoding="utf-8"), \
        "README.md's lecture spec differs from specs/lecture_cnn.yaml: paste the file"


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_builds(spec):
    assert bpcli.build(spec).n_params() > 0


def test_readme_names_every_command():
    from bpcli.cli import app

    text = README.read_text(encoding="utf-8")
    for cmd in app.registered_commands:
        name = cmd.name or cmd.callback.__name__
        assert f"bpcli {name}" in text, name


def test_every_make_target_the_docs_name_exists():
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))
    named = {t for page in PAGES for t in re.findall(r"`make ([a-z][\w-]*)`",
                                                     page.read_text(encoding="utf-8"))}
    assert named <= targets, f"named in the docs but not in the Makefile: {named - targets}"
