"""The README's bundle reference must describe exactly what the bundle code reads, so the two cannot drift.

Checked against the code itself, both ways (nothing missing, nothing stale):

* every key of every config model sits in its section's table, with the model's default;
* Assay extensions (fields whose description starts with "Assay") are marked "Assay extension";
* the AWS keys, the ignored phase keys and the reader's limits have their tables;
* every error code the bundle package can raise is in the error-code table. Codes are found by
  parsing ``src/assay/bundle/*.py`` with :mod:`ast` and taking the first argument of each
  ``Problem(...)``, ``BundleError.single(...)``, ``f.add/f.warn(...)``, ``self.add(...)`` and
  ``self._fail(...)`` call. A plain regex would miss codes that are not a literal at the call:
  ``code = "a" if c else "b"``, lookups in a table such as ``_EVALAI_CODES`` and
  ``f"duplicate_{attr}"`` with ``attr`` looped over a literal tuple; those are followed too;
* the example config validates without a single warning.

The reference lives in README.md from its "Bundle reference" heading on.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from assay.bundle import model, yamlsafe
from assay.bundle.model import (
    AWS_INFRA_KEYS,
    IGNORED_PHASE_KEYS,
    ChallengeConfig,
    DatasetSplit,
    DefaultMetaAttribute,
    LabelMeta,
    Leaderboard,
    LeaderboardSchema,
    MetaAttribute,
    Phase,
    PhaseSplit,
    Prize,
    Sponsor,
)
from assay.bundle.reader import parse_config
from assay.bundle.source import Limits

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BUNDLE_SRC = ROOT / "src" / "assay" / "bundle"
SAFEZIP_SRC = ROOT / "src" / "assay" / "evaluation" / "safezip.py"  # the zip entry rule the bundle reports by

# Heading text (a substring of it) → the model whose keys its table lists.
MODEL_SECTIONS: dict[str, type[BaseModel]] = {
    "Challenge-level keys": ChallengeConfig,
    "Leaderboard keys": Leaderboard,
    "Leaderboard schema": LeaderboardSchema,
    "Label metadata": LabelMeta,
    "Phase keys": Phase,
    "Submission meta attributes": MetaAttribute,
    "Default meta attributes": DefaultMetaAttribute,
    "Dataset splits": DatasetSplit,
    "Phase splits": PhaseSplit,
    "Prizes": Prize,
    "Sponsors": Sponsor,
}
AWS_SECTION = "AWS infrastructure keys"
IGNORED_SECTION = "Ignored keys"
EXTENSIONS_SECTION = "Assay extensions"
CODES_SECTION = "Error codes"
LIMITS_SECTION = "Limits and refused input"
EXAMPLE_SECTION = "Example"
ALL_SECTIONS = [
    *MODEL_SECTIONS,
    AWS_SECTION,
    IGNORED_SECTION,
    EXTENSIONS_SECTION,
    CODES_SECTION,
    LIMITS_SECTION,
]

# Internal fields that are not YAML keys (the AWS keys are kept under this name).
INTERNAL_FIELDS = {ChallengeConfig: {"infrastructure"}}

# Calls whose first argument is an error code: ("Problem",) is a bare name, the others receiver.method.
CODE_CALLS = {
    ("Problem",),
    ("BundleError", "single"),
    ("f", "add"),
    ("f", "warn"),
    ("self", "add"),
    ("self", "_fail"),
}
CODE_SHAPE = re.compile(r"^[a-z][a-z0-9_]*$")

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


# --- reading the markdown ---------------------------------------------------------------------------


def _sections(text: str) -> list[tuple[int, str, str]]:
    """(level, heading, body up to the next heading) for each heading outside fenced code."""
    out: list[tuple[int, str, list[str]]] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            out.append((len(match.group(1)), match.group(2), []))
        elif out:
            out[-1][2].append(line)
    return [(level, title, "\n".join(body)) for level, title, body in out]


def _section(text: str, title: str) -> str:
    found = [body for _, heading, body in _sections(text) if title.lower() in heading.lower()]
    assert found, f"no heading containing {title!r}"
    return found[0]


def _rows(body: str) -> dict[str, list[str]]:
    """Table rows whose first cell is a `key`: key → the other cells."""
    rows: dict[str, list[str]] = {}
    for line in body.splitlines():
        match = _ROW.match(line.strip())
        if match:
            key = match.group(1)
            assert key not in rows, f"`{key}` has two rows in one table"
            rows[key] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def _bundle_reference_part(text: str) -> str | None:
    """README.md from its 'Bundle reference' heading on, or None if it has none."""
    lines = text.splitlines()
    fenced = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match and "bundle reference" in match.group(2).lower():
            return "\n".join(lines[i:])
    return None


@pytest.fixture
def doc() -> str:
    part = _bundle_reference_part(README.read_text(encoding="utf-8"))
    assert part is not None, "README.md has no 'Bundle reference' heading"
    return part


# --- reading the code -------------------------------------------------------------------------------


def _yaml_keys(model_cls: type[BaseModel]) -> dict[str, str]:
    """YAML key (the alias where there is one) → attribute name."""
    internal = INTERNAL_FIELDS.get(model_cls, set())
    return {(info.alias or name): name for name, info in model_cls.model_fields.items() if name not in internal}


def _is_extension(model_cls: type[BaseModel], attr: str) -> bool:
    return (model_cls.model_fields[attr].description or "").startswith("Assay")


def _call_name(func: ast.expr) -> tuple[str, ...]:
    if isinstance(func, ast.Name):
        return (func.id,)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return (func.value.id, func.attr)
    return ()


Scope = dict[str, list[ast.expr]]


def _assignments(nodes: list[ast.AST]) -> Scope:
    """Name → every value assigned to it among ``nodes`` (and, for functions, everything inside)."""
    scope: Scope = {}
    for top in nodes:
        for node in ast.walk(top):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        scope.setdefault(target.id, []).append(node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                scope.setdefault(node.target.id, []).append(node.value)
            elif isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple | ast.List):
                # for x in ("a", "b") / for a, b in (("a", 1), ("b", 2)): each name takes each item
                for item in node.iter.elts:
                    if isinstance(node.target, ast.Name):
                        scope.setdefault(node.target.id, []).append(item)
                    elif isinstance(node.target, ast.Tuple) and isinstance(item, ast.Tuple):
                        for name, value in zip(node.target.elts, item.elts, strict=False):
                            if isinstance(name, ast.Name):
                                scope.setdefault(name.id, []).append(value)
    return scope


def _codes_in(node: ast.expr, scopes: list[Scope], seen: frozenset = frozenset()) -> list[str]:
    """Codes an expression can evaluate to, as regex patterns.

    Follows what the code does with codes: literals, f-strings, ``a if c else b``, ``a or b``, a
    variable assigned (or looped over a literal tuple) in the function or module, and a lookup
    (``TABLE.get(k)``, ``TABLE[k]``) in a dict.
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [re.escape(node.value)]
    if isinstance(node, ast.JoinedStr):
        # each {field} takes every value it can have, or matches any code if it cannot be resolved
        options = [
            [re.escape(v.value)]
            if isinstance(v, ast.Constant)
            else sorted(set(_codes_in(v.value, scopes, seen))) or ["[a-z0-9_]+"]
            for v in node.values
            if isinstance(v, ast.Constant | ast.FormattedValue)
        ]
        return ["".join(combo) for combo in itertools.product(*options)]
    if isinstance(node, ast.IfExp):
        return _codes_in(node.body, scopes, seen) + _codes_in(node.orelse, scopes, seen)
    if isinstance(node, ast.BoolOp):
        return [code for value in node.values for code in _codes_in(value, scopes, seen)]
    if isinstance(node, ast.Dict):
        return [code for value in node.values if value is not None for code in _codes_in(value, scopes, seen)]
    if isinstance(node, ast.Subscript):
        return _codes_in(node.value, scopes, seen)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        fallback = node.args[1:2]
        return [code for part in (node.func.value, *fallback) for code in _codes_in(part, scopes, seen)]
    if isinstance(node, ast.Name) and node.id not in seen:
        for scope in scopes:  # innermost first
            if node.id in scope:
                return [code for value in scope[node.id] for code in _codes_in(value, scopes, seen | {node.id})]
    return []  # a parameter or attribute (Problem(p.code, ...)): passing on a code raised elsewhere


def source_codes() -> dict[str, set[str]]:
    """Pattern of each error code in src/assay/bundle → the files that raise it."""
    codes: dict[str, set[str]] = {}
    for path in sorted(BUNDLE_SRC.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        top_level = [n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.ClassDef)]
        module = _assignments(top_level)
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        # top-level statements with the module's names; each function (nested ones included) with its own
        for scope_node, scopes in [(ast.Module(body=top_level, type_ignores=[]), [module])] + [
            (fn, [_assignments([fn]), module]) for fn in functions
        ]:
            for node in ast.walk(scope_node):
                if not isinstance(node, ast.Call) or _call_name(node.func) not in CODE_CALLS:
                    continue
                first = node.args[0] if node.args else None
                first = first or next((k.value for k in node.keywords if k.arg == "code"), None)
                for pattern in _codes_in(first, scopes) if first is not None else []:
                    codes.setdefault(pattern, set()).add(path.name)
    _safezip_codes(codes)
    return codes


def _safezip_codes(codes: dict[str, set[str]]) -> None:
    """The codes of the safezip rules the bundle imports: it reports a refused zip entry with the rule's own code
    (``UnsafeZipError(message, code)``), so they are bundle codes too."""
    imported = {
        alias.name
        for path in BUNDLE_SRC.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module == "assay.evaluation.safezip"
        for alias in node.names
    }
    for fn in ast.parse(SAFEZIP_SRC.read_text(encoding="utf-8")).body:
        if not (isinstance(fn, ast.FunctionDef) and fn.name in imported):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and _call_name(node.func) == ("UnsafeZipError",) and len(node.args) > 1:
                for pattern in _codes_in(node.args[1], [_assignments([fn])]):
                    codes.setdefault(pattern, set()).add(SAFEZIP_SRC.name)


def _human(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,}"


# --- the checks -------------------------------------------------------------------------------------


def test_code_extraction_finds_the_codes():
    codes = source_codes()
    assert len(codes) >= 40, sorted(codes)
    for pattern in codes:
        assert CODE_SHAPE.match(pattern.replace("[a-z0-9_]+", "x").replace("\\", "")), pattern
    for known in (
        "missing_key",
        "wrong_type",
        "bad_value",
        "extra_tags",
        "unknown_key",
        "zip_bomb",
        "yaml_unsafe_tag",
    ):
        assert re.escape(known) in codes


def test_doc_headings_are_unique():
    headings = [title for _, title, _ in _sections(_bundle_reference_part(README.read_text(encoding="utf-8")) or "")]
    for title in ALL_SECTIONS:
        hits = [h for h in headings if title.lower() in h.lower()]
        assert len(hits) == 1, f"{title!r} matches headings {hits}"


@pytest.mark.parametrize("title", list(MODEL_SECTIONS))
def test_every_model_key_has_a_row(doc, title):
    model_cls = MODEL_SECTIONS[title]
    rows = _rows(_section(doc, title))
    keys = _yaml_keys(model_cls)
    missing = sorted(set(keys) - set(rows))
    stale = sorted(set(rows) - set(keys))
    assert not missing, f"{model_cls.__name__} keys missing from the {title!r} table: {missing}"
    assert not stale, f"{title!r} table lists keys {model_cls.__name__} does not have: {stale}"


@pytest.mark.parametrize("title", list(MODEL_SECTIONS))
def test_defaults_match_the_model(doc, title):
    model_cls = MODEL_SECTIONS[title]
    rows = _rows(_section(doc, title))
    for key, attr in _yaml_keys(model_cls).items():
        info = model_cls.model_fields[attr]
        cells = rows[key]
        assert len(cells) == 3, f"{key}: expected Type | Default | Meaning, got {cells}"
        default_cell = cells[1]
        if info.is_required():
            assert "required" in default_cell.lower(), f"{title}: `{key}` is required: {default_cell!r}"
        elif info.default_factory is not None:
            assert f"`{info.default_factory()!r}`" in default_cell, f"{title}: `{key}`: {default_cell!r}"
        elif isinstance(info.default, bool | int | str) and info.default != "":
            assert f"`{info.default}`" in default_cell, (
                f"{title}: `{key}` defaults to {info.default!r}, the table says {default_cell!r}"
            )


def test_assay_extensions_are_marked(doc):
    extensions = set()
    for title, model_cls in MODEL_SECTIONS.items():
        rows = _rows(_section(doc, title))
        for key, attr in _yaml_keys(model_cls).items():
            marked = "Assay extension" in " ".join(rows[key])
            if _is_extension(model_cls, attr):
                extensions.add(key)
                assert marked, f"{title}: `{key}` is an Assay addition; mark it **Assay extension**"
            else:
                assert not marked, f"{title}: `{key}` is an EvalAI key but is marked as an Assay extension"
    assert extensions, "no field description starts with 'Assay' (count_failed_submissions should)"
    assert set(_rows(_section(doc, EXTENSIONS_SECTION))) == extensions


def test_aws_infrastructure_keys(doc):
    body = _section(doc, AWS_SECTION)
    assert set(_rows(body)) == set(AWS_INFRA_KEYS)
    assert "`infrastructure`" in body
    assert "no effect" in body


def test_ignored_phase_keys(doc):
    assert set(_rows(_section(doc, IGNORED_SECTION))) == set(IGNORED_PHASE_KEYS)


def test_every_error_code_is_documented(doc):
    patterns = source_codes()
    documented = _rows(_section(doc, CODES_SECTION))
    for pattern, files in patterns.items():
        assert any(re.fullmatch(pattern, code) for code in documented), (
            f"error code {pattern!r} (raised in {', '.join(sorted(files))}) is not in the error-code table"
        )
    stale = [code for code in documented if not any(re.fullmatch(p, code) for p in patterns)]
    assert not stale, f"the error-code table lists codes the bundle code never raises: {stale}"
    for code, cells in documented.items():
        assert cells[0].split()[0] in ("error", "warning"), f"`{code}`: severity {cells[0]!r}"


def test_limits(doc):
    body = _section(doc, LIMITS_SECTION)
    rows = _rows(body)
    defaults = {f.name: f.default for f in dataclasses.fields(Limits)}
    assert set(rows) == set(defaults)
    for name, value in defaults.items():
        assert _human(value) in rows[name][0], f"`{name}` defaults to {_human(value)}, the table says {rows[name][0]!r}"
    for fixed in (_human(yamlsafe.MAX_CONFIG_BYTES), f"{yamlsafe.MAX_NODES:,}", str(yamlsafe.MAX_DEPTH)):
        assert fixed in body, f"YAML limit {fixed} is not stated"


def test_enumerations(doc):
    for value in (*model.DOMAINS, *model.RETENTION_POLICIES, *model.DEFAULT_META_NAMES):
        assert f"`{value}`" in doc, value
    assert model.DEFAULT_FILE_TYPES in doc


def test_example_config_is_valid_and_clean(doc):
    body = _section(doc, EXAMPLE_SECTION)
    match = re.search(r"```yaml\n(.*?)```", body, re.S)
    assert match, "the Example section has no yaml block"
    _config, _lines, problems = parse_config(match.group(1).encode(), "example")
    assert not problems, [str(p) for p in problems]
