"""YAML syntax errors reach hosts in plain words, with the line to look at, whatever face reads the bundle."""

from __future__ import annotations

import pytest

from assay.bundle import BundleError
from assay.bundle.yamlsafe import load_yaml

#: text, the line reported, words the message must hold
CASES = {
    "indentation": ("title: x\nprizes:\n  - rank: 1\n   amount: 2\n", 4, "indentation does not line up"),
    "list-and-key": ("a:\n  - 1\n  b: 2\n", 3, "indentation does not line up"),
    "colon-in-value": ("title: a: b\n", 1, "in quotes"),
    "tab": ("title: x\n\tname: y\n", 2, "a tab character"),
    "unclosed-quote": ('title: "abc\nname: y\n', 1, "a quote opened on line 1 is never closed"),
    "unclosed-bracket": ("title: x\nleaderboard: [\n  - id: 1\n", 3, "not closed"),
    "two-documents": ("title: a\n---\ntitle: b\n", 2, "more than one YAML document"),
    "missing-colon": ("title: x\njust text\nname: y\n", 3, "'key: value'"),
    "undefined-alias": ("a: *b\n", 1, "refers to no anchor"),
    "reserved-character": ("a: @b\n", 1, "cannot start with '@'"),
}
PYYAML_WORDING = ("expected", "while parsing", "while scanning", "<block", "found character", "but found")


@pytest.mark.parametrize("name", sorted(CASES))
def test_yaml_syntax_errors_read_as_plain_words(name):
    text, line, words = CASES[name]
    with pytest.raises(BundleError) as caught:
        load_yaml(text.encode())
    (problem,) = caught.value.problems
    assert problem.code == "yaml_syntax" and problem.line == line and problem.key is None
    assert words in problem.message
    assert not any(raw in problem.message for raw in PYYAML_WORDING), problem.message
