"""Evaluation logs as participants read them: no server paths, and a sentence instead of a blank page."""

from __future__ import annotations

import re

# an absolute path of two or more parts ("/tmp/assay-worker/x/main.py", "/usr/lib/python3/…"): the folders
# say how the evaluation host is laid out, which is none of a participant's business; the file name stays
_PATH = re.compile(r"(?<![\w.~:/])/(?:[\w.@+-]+/)+(?=[\w.@+-])")


def without_server_paths(text: str) -> str:
    """``text`` with the folders of absolute paths replaced by ``…/`` (the file name kept for line numbers)."""
    return _PATH.sub("…/", text)


def empty_log(kind: str) -> str:
    return f"The evaluation wrote nothing to {kind}.\n"
