"""Build valid EvalAI-style challenge bundles for tests: a config dict, a folder, a zip.

Everything here is deterministic and small. Tests mutate :func:`minimal_config` (a fresh dict each
call) and then write it with :func:`write_folder` or :func:`write_zip`; the files the config names
(templates, evaluation script, annotations, logo) are written alongside.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)

SCRIPT_INIT = "from .main import evaluate  # noqa: F401\n"
SCRIPT_MAIN = """\
def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    return {"result": [{"test_split": {"Score": 1.0}}], "submission_result": {"Score": 1.0}}
"""

TEMPLATES = {
    "templates/description.html": "<h1>Challenge</h1><p>Describe the task.</p>",
    "templates/evaluation_details.html": "<p>Scored by accuracy.</p>",
    "templates/terms_and_conditions.html": "<p>Be nice.</p>",
    "templates/submission_guidelines.html": "<p>Upload a JSON file.</p>",
    "templates/challenge_phase_1_description.html": "<p>Dev phase — ünïcode</p>",
}

_BASE: dict[str, Any] = {
    "title": "Test Challenge",
    "short_description": "A challenge used by the test-suite",
    "description": "templates/description.html",
    "evaluation_details": "templates/evaluation_details.html",
    "terms_and_conditions": "templates/terms_and_conditions.html",
    "submission_guidelines": "templates/submission_guidelines.html",
    "evaluation_script": "evaluation_script.zip",
    "start_date": dt.datetime(2020, 1, 1),
    "end_date": dt.datetime(2099, 12, 31, 23, 59, 59),
    "published": True,
    "tags": ["tests"],
    "leaderboard": [
        {
            "id": 1,
            "schema": {
                "labels": ["Score", "Total"],
                "default_order_by": "Total",
                "metadata": {"Score": {"sort_ascending": False, "description": "The score."}},
            },
        }
    ],
    "challenge_phases": [
        {
            "id": 1,
            "name": "Dev Phase",
            "description": "templates/challenge_phase_1_description.html",
            "codename": "dev",
            "start_date": dt.datetime(2020, 1, 1),
            "end_date": dt.datetime(2099, 12, 31, 23, 59, 59),
            "test_annotation_file": "annotations/test_annotations_devsplit.json",
            "leaderboard_public": True,
            "is_public": True,
            "max_submissions_per_day": 5,
            "max_submissions": 50,
        }
    ],
    "dataset_splits": [{"id": 1, "name": "Test Split", "codename": "test_split"}],
    "challenge_phase_splits": [
        {
            "challenge_phase_id": 1,
            "leaderboard_id": 1,
            "dataset_split_id": 1,
            "visibility": 3,
            "leaderboard_decimal_precision": 2,
            "is_leaderboard_order_descending": True,
        }
    ],
}


def minimal_config(**overrides: Any) -> dict[str, Any]:
    """A fresh, valid config dict; ``overrides`` replace top-level keys (``None`` deletes one)."""
    config = copy.deepcopy(_BASE)
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def dump_config(config: Mapping[str, Any]) -> bytes:
    """The config as YAML bytes, keys in insertion order (datetimes as plain YAML timestamps)."""
    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True).encode("utf-8")


def script_zip(files: Mapping[str, bytes | str] | None = None) -> bytes:
    """A flat evaluation_script.zip (``__init__.py`` exposing evaluate, ``main.py``) or ``files``."""
    if files is None:
        files = {"__init__.py": SCRIPT_INIT, "main.py": SCRIPT_MAIN}
    return zip_bytes(files)


def zip_bytes(files: Mapping[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in files.items():
            zf.writestr(name, payload.encode("utf-8") if isinstance(payload, str) else payload)
    return buf.getvalue()


def zip_tree(folder: Path, target: Path, prefix: str = "") -> Path:
    """Every file under ``folder`` zipped at ``target``, paths relative to it (under ``prefix``), as a host zips one."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return target


def bundle_files(
    config: Mapping[str, Any] | None = None,
    *,
    config_bytes: bytes | None = None,
    config_name: str = "challenge_config.yaml",
    logo: bytes | None = None,
    extra: Mapping[str, bytes | str] | None = None,
    omit: tuple[str, ...] = (),
) -> dict[str, bytes]:
    """Path → content of every file of a complete bundle (the config first)."""
    config = minimal_config() if config is None else config
    files: dict[str, bytes] = {config_name: config_bytes if config_bytes is not None else dump_config(config)}
    for rel, text in TEMPLATES.items():
        files[rel] = text.encode("utf-8")
    files["evaluation_script.zip"] = script_zip()
    files["annotations/test_annotations_devsplit.json"] = b'{"answers": [1, 2, 3]}'
    if logo is not None:
        files["logo.png"] = logo
    for rel, payload in (extra or {}).items():
        files[rel] = payload.encode("utf-8") if isinstance(payload, str) else payload
    for rel in omit:
        files.pop(rel, None)
    return files


def write_folder(root: Path, config: Mapping[str, Any] | None = None, **kwargs: Any) -> Path:
    """Write a complete bundle folder at ``root`` (created) and return it."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, payload in bundle_files(config, **kwargs).items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
    return root


def write_zip(path: Path, config: Mapping[str, Any] | None = None, *, prefix: str = "", **kwargs: Any) -> Path:
    """Write a complete bundle as a zip at ``path``; ``prefix`` nests it in a folder (legacy upload)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, payload in bundle_files(config, **kwargs).items():
            zf.writestr(prefix + rel, payload)
    return path
