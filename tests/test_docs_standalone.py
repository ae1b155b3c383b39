"""The project's documentation stands alone: nothing in the README or docs/ points outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)")


def _documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_relative_links_stay_inside_the_repository_and_exist() -> None:
    problems = []
    for doc in _documents():
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            resolved = (doc.parent / target).resolve()
            if not resolved.is_relative_to(ROOT):
                problems.append(f"{doc.relative_to(ROOT)} links outside the repository: {target}")
            elif not resolved.exists():
                problems.append(f"{doc.relative_to(ROOT)} links to a missing file: {target}")
    assert not problems, "\n".join(problems)


def test_the_design_page_exists_and_names_every_package() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for package in sorted(p.name for p in (ROOT / "src" / "assay").iterdir() if (p / "__init__.py").is_file()):
        assert f"`assay.{package}`" in text, f"docs/architecture.md does not describe assay.{package}"
