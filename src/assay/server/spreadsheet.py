"""CSV cells a spreadsheet will not run: the one rule every export (host, participant, leaderboard) applies.

A cell that starts with ``= + - @`` (or a tab / carriage return, which some spreadsheets skip before those)
is read as a formula when a host opens the file: a team or method name is a stranger's text, so such a cell
gets a leading apostrophe. Plain Python, in the base layer, so every app and face may import it.
"""

from __future__ import annotations

from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: Any) -> str:
    """``value`` as cell text, prefixed with ``'`` when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text
