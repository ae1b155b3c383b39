"""Where the real EvalAI inputs live: ``../shared/corpus`` beside the repository, read at test time.

They are other people's public challenge configs and repositories, with no licence granted, so they are
never copied into the project. ``ASSAY_SHARED_CORPUS`` points elsewhere; otherwise the folder beside the
checkout, then the workplace's ``/work/shared/corpus``. ``ASSAY_REQUIRE_CORPUS=1`` (set by CI) turns a
missing corpus into a failure instead of a skip, so CI can never pass without having read it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    Path(p)
    for p in (os.environ.get("ASSAY_SHARED_CORPUS"), REPO.parent / "shared" / "corpus", "/work/shared/corpus")
    if p
]
ROOT = next((p for p in _CANDIDATES if (p / "evalai-configs").is_dir()), _CANDIDATES[0])
CONFIGS = ROOT / "evalai-configs"
BUNDLES = ROOT / "evalai-bundles"
REQUIRED = os.environ.get("ASSAY_REQUIRE_CORPUS") == "1"


def need(folder: Path) -> Path:
    """``folder`` when it exists; else skip (or fail, when CI requires the corpus) with where it was sought."""
    if not folder.is_dir():
        message = f"the EvalAI corpus was not found (looked in {', '.join(map(str, _CANDIDATES))})"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return folder
