"""What an evaluation script's ``requirements.txt`` may ask for: named packages from the index, as wheels.

Why so strict: pip runs on the worker outside the evaluation sandbox (it needs the network). Installing a
wheel only copies files, but building a source distribution runs its ``setup.py`` — arbitrary code, as the
worker's user, next to other challenges' cached annotations. So workers install with
``--only-binary=:all:``, and since pip still builds what a line names directly (a path, a URL, a VCS
checkout) whatever that flag says, such lines are refused, as are options that change where packages come
from or pull in other files. Checked when a bundle is read (the host hears at once, with the line) and
again by the worker before pip runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class RequirementProblem:
    line: int
    text: str
    why: str

    def __str__(self) -> str:
        return f"requirements.txt line {self.line}: {self.text[:80]!r} {self.why}"


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, content) with comments removed and backslash continuations joined."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def requirement_problems(text: str) -> list[RequirementProblem]:
    """Every line a worker would refuse to install, with why; empty when the file is acceptable."""
    problems: list[RequirementProblem] = []
    for number, line in _logical_lines(text):
        if line.startswith("-"):
            problems.append(
                RequirementProblem(
                    number,
                    line,
                    "is a pip option; only package names with versions are allowed (no -e, -r, "
                    "-c, --index-url, --find-links…): the worker installs from its configured index",
                )
            )
            continue
        spec, _, options = line.partition(" --")
        if options and not all(part.strip().startswith("hash") for part in (" --" + options).split(" --")[1:]):
            problems.append(RequirementProblem(number, line, "has options; only --hash=… may follow a requirement"))
            continue
        try:
            requirement = Requirement(spec.strip())
        except InvalidRequirement:
            why = (
                "names a file, a URL or a repository; publish it as a wheel on the index, or vendor the code "
                "into the script"
                if any(mark in spec for mark in ("/", ":", "\\")) or spec.startswith(".")
                else "is not a requirement pip understands (name, optional [extras], version specifier)"
            )
            problems.append(RequirementProblem(number, line, why))
            continue
        if requirement.url:
            problems.append(
                RequirementProblem(
                    number,
                    line,
                    "points at a URL; pip would build it from source outside the sandbox. Ask for "
                    "the package by name and version from the index instead",
                )
            )
    return problems


def requirement_names(text: str) -> set[str]:
    """The canonical distribution names a requirements.txt asks for (lines read as :func:`requirement_problems`
    reads them: comments, continuations and ``--hash`` options; refused lines name nothing)."""
    names = set()
    for _, line in _logical_lines(text):
        if line.startswith("-"):
            continue
        try:
            names.add(canonicalize_name(Requirement(line.partition(" --")[0].strip()).name))
        except InvalidRequirement:
            continue
    return names
