"""YAML reading for configs written by strangers: safe tags only, bounded size, line numbers kept.

PyYAML's composer gives the node graph with positions; we build plain Python values from it
ourselves so that (a) aliases cannot expand into a billion nodes, (b) any tag outside the YAML
core schema is refused, and (c) each key path keeps the line it came from. Scalars are still
resolved by PyYAML's SafeLoader, so values mean exactly what they mean to EvalAI (which calls
``yaml.safe_load``): ``True``, ``2019-01-01 00:00:00`` (a datetime) and so on.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import BundleError, Problem

Path = tuple[str | int, ...]

MAX_CONFIG_BYTES = 2 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

_SAFE_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp", "binary", "set", "omap")
}
_MERGE_TAG = "tag:yaml.org,2002:merge"


class LineMap(dict[Path, int]):
    """Key path → 1-based line of the key (for mappings) or the item (for sequences)."""

    def line_for(self, path: Path) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            if path[:end] in self:
                return self[path[:end]]
        return None


def decode_text(data: bytes, file: str) -> str:
    """UTF-8 (with or without BOM) only: other encodings give mojibake in stored HTML."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BundleError.single(
            "not_utf8", f"file is not UTF-8 text (bad byte at offset {exc.start})", file=file, line=line
        ) from None
    if "\x00" in text:
        raise BundleError.single("binary_text", "text file contains NUL bytes", file=file)
    return text


def load_yaml(data: bytes, file: str = "challenge_config.yaml") -> tuple[Any, LineMap, list[Problem]]:
    """Parse one YAML document. Returns the value, its line map and warnings (duplicate keys)."""
    if len(data) > MAX_CONFIG_BYTES:
        raise BundleError.single(
            "config_too_large", f"config is {len(data)} bytes; the limit is {MAX_CONFIG_BYTES}", file=file
        )
    text = decode_text(data, file)
    try:
        loader = yaml.SafeLoader(text)  # checks every character up front
    except yaml.reader.ReaderError as exc:
        line = text[: max(exc.position, 0)].count("\n") + 1
        raise BundleError.single(
            "yaml_syntax", f"YAML does not allow the character U+{exc.character:04X}", file=file, line=line
        ) from None
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        reason, line = syntax_reason(exc)
        raise BundleError.single("yaml_syntax", f"YAML syntax error: {reason}", file=file, line=line) from None
    except yaml.YAMLError:
        raise BundleError.single("yaml_syntax", f"YAML syntax error: {_UNREADABLE}", file=file) from None
    except RecursionError:
        raise BundleError.single("yaml_too_deep", "YAML nesting is too deep", file=file) from None
    finally:
        loader.dispose()
    if node is None:
        return None, LineMap(), []
    builder = _Builder(file)
    value = builder.build(node, (), 0)
    return value, builder.lines, builder.warnings


_UNREADABLE = (
    "this is not valid YAML; check the indentation, the ':' after each key, and that quotes and brackets are closed"
)


def syntax_reason(exc: yaml.MarkedYAMLError) -> tuple[str, int | None]:
    """PyYAML's parser wording ("expected <block end>, but found '?'") in plain words, and the line to point
    at: where the fault is, or where the unclosed quote or bracket was opened."""
    problem, context = str(exc.problem or ""), str(exc.context or "")
    at = exc.problem_mark.line + 1 if exc.problem_mark else None
    opened = exc.context_mark.line + 1 if exc.context_mark else at
    if "expected <block end>" in problem or "expected <document start>" in problem:
        where = f" (the block starts on line {opened})" if opened and opened != at else ""
        return (
            "the indentation does not line up with the lines above it" + where + "; the keys of one mapping, and"
            " the '- ' items of one list, must start in the same column",
            at,
        )
    if "mapping values are not allowed" in problem:
        return (
            "a ': ' where no new key can start: put a value that contains ': ' in quotes, or indent this line"
            " under a key that has no value on its own line",
            at,
        )
    if "'\\t'" in problem:  # PyYAML quotes the character as its repr
        return "a tab character: YAML indents with spaces only", at
    if "cannot start any token" in problem:
        char = problem.partition("'")[2].rpartition("'")[0]
        return f"a value cannot start with {char!r} unless it is in quotes", at
    if "quoted scalar" in context:
        return f"a quote opened on line {opened} is never closed", opened
    if "could not find expected ':'" in problem:
        return ("a line without a 'key: value' form: add the ':' after the key, or put a long value in quotes", at)
    if "flow" in context:
        return "a [ ] list or { } mapping is not closed, or its items are not separated by commas", at
    if "single document" in context:
        return "the file holds more than one YAML document (a '---' line); keep only one", at
    if "undefined alias" in problem:
        return "an alias (*name) refers to no anchor (&name) defined above it", at
    if "duplicate anchor" in context:
        return f"an anchor (&name) is defined twice, first on line {opened}", at
    return _UNREADABLE, at


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.lines = LineMap()
        self.warnings: list[Problem] = []
        self.count = 0
        self.scalar_loader = yaml.SafeLoader("")

    def _fail(self, code: str, message: str, node: yaml.Node) -> BundleError:
        return BundleError.single(code, message, file=self.file, line=node.start_mark.line + 1)

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(
                "yaml_too_large",
                f"YAML expands to more than {MAX_NODES} values (alias bomb?)",
                node,
            )
        if depth > MAX_DEPTH:
            raise self._fail("yaml_too_deep", f"YAML nesting deeper than {MAX_DEPTH} levels", node)
        if node.tag not in _SAFE_TAGS:
            raise self._fail("yaml_unsafe_tag", f"YAML tag {node.tag!r} is not allowed", node)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            return self.scalar_loader.construct_object(node)
        except Exception as exc:  # an explicit tag on a malformed scalar ('!!int ""') trips PyYAML anywhere
            raise self._fail("yaml_bad_value", f"bad YAML value {node.value!r}: {exc}", node) from None

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict:
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merged_pairs(value_node, depth))
            else:
                own.append((key_node, value_node))
        result: dict = {}
        seen: dict = {}
        for index, (key_node, value_node) in enumerate(merged + own):
            if index == len(merged):
                seen = {}  # keys written out override merged ones silently, as YAML says
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._fail("yaml_bad_key", "mapping keys must be plain scalars", key_node)
            key = self.build(key_node, (*path, "\0key"), depth + 1)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise self._fail("yaml_bad_key", f"mapping key {key!r} is not a string", key_node)
            if isinstance(key, float | bool):
                key = str(key)
            if key in seen and seen[key] is not None:
                self.warnings.append(
                    Problem(
                        "duplicate_key",
                        f"key {key!r} appears twice (line {seen[key]} and {key_node.start_mark.line + 1});"
                        " the last one wins, as in EvalAI",
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                        key=".".join(str(p) for p in (*path, key)),
                        severity="warning",
                    )
                )
            seen[key] = key_node.start_mark.line + 1
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, (*path, key), depth + 1)
        self.lines.pop((*path, "\0key"), None)
        return result

    def _merged_pairs(self, node: yaml.Node, depth: int) -> list[tuple[yaml.Node, yaml.Node]]:
        if depth > MAX_DEPTH:
            raise self._fail("yaml_too_deep", f"YAML nesting deeper than {MAX_DEPTH} levels", node)
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for src in sources:
            if not isinstance(src, yaml.MappingNode):
                raise self._fail("yaml_bad_merge", "'<<' must merge a mapping", src)
            self.count += len(src.value)
            if self.count > MAX_NODES:
                raise self._fail("yaml_too_large", f"YAML expands to more than {MAX_NODES} values", src)
            for key_node, value_node in src.value:
                if key_node.tag == _MERGE_TAG:
                    pairs.extend(self._merged_pairs(value_node, depth + 1))
                else:
                    pairs.append((key_node, value_node))
        return pairs
