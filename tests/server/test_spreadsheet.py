"""The one CSV formula rule (assay.server.spreadsheet), and that every CSV export applies it."""

from __future__ import annotations

import csv
import io

import pytest

from assay.server.spreadsheet import safe_text


@pytest.mark.parametrize(
    "value, cell",
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2", "'-2"),
        ("@x", "'@x"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("plain", "plain"),
        ("a=b", "a=b"),  # only the first character makes a formula
        ("", ""),
        (None, ""),
        (-3, "'-3"),  # a number written as text is text too: the rule is about the cell's first character
        (0.5, "0.5"),
    ],
)
def test_safe_text(value, cell):
    assert safe_text(value) == cell


def test_host_csv_rows_use_the_rule():
    """challenges.services.hosting.csv_rows (the host's participant and submission exports) neutralises
    every cell with the same rule as the leaderboard exports."""
    from assay.server.challenges.services.hosting import csv_rows

    text = "".join(csv_rows([["name", "method"], ["=HYPERLINK(1)", "@evil"], ["ok", None]]))
    assert list(csv.reader(io.StringIO(text))) == [["name", "method"], ["'=HYPERLINK(1)", "'@evil"], ["ok", ""]]


def test_leaderboard_exports_use_the_rule():
    """leaderboards.services.exports reads the same function (not a copy of it)."""
    from assay.server import spreadsheet
    from assay.server.leaderboards.services import exports

    assert exports.safe_text is spreadsheet.safe_text
