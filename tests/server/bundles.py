"""Turning a bare ``challenge_config.yaml`` into a complete bundle folder, for import tests.

The corpus holds only configs; this writes every file they name (templates, logo, evaluation
script as zip or folder, annotations) so the configs can be imported as hosts would upload them.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import yaml

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cf"
    "c0000003010100c9fe92ef0000000049454e44ae426082"
)
EVAL_INIT = "from .main import evaluate\n"
EVAL_MAIN = (
    "def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):\n    return {'result': []}\n"
)


def _write(root: Path, rel: str, data: bytes) -> None:
    target = root / rel.strip().lstrip("./")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def script_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("__init__.py", EVAL_INIT)
        zf.writestr("main.py", EVAL_MAIN)
    return buf.getvalue()


def complete_bundle(config_path: Path, dest: Path) -> Path:
    """Write a full bundle folder for ``config_path`` into ``dest`` and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config_path, dest / "challenge_config.yaml")
    config = yaml.safe_load(config_path.read_bytes())
    for key in ("description", "evaluation_details", "terms_and_conditions", "submission_guidelines"):
        if isinstance(config.get(key), str):
            _write(dest, config[key], f"<p>{key} of {config.get('title')}</p>".encode())
    if isinstance(config.get("image"), str):
        _write(dest, config["image"], PNG_1PX)
    script = config.get("evaluation_script")
    if isinstance(script, str):
        if script.strip().endswith(".zip"):
            _write(dest, script, script_zip())
        else:
            _write(dest, script.rstrip("/") + "/__init__.py", EVAL_INIT.encode())
            _write(dest, script.rstrip("/") + "/main.py", EVAL_MAIN.encode())
    for phase in config.get("challenge_phases") or []:
        if isinstance(phase.get("description"), str):
            _write(dest, phase["description"], f"<p>phase {phase.get('codename')}</p>".encode())
        if isinstance(phase.get("test_annotation_file"), str):
            _write(dest, phase["test_annotation_file"], b'{"labels": [0, 1, 1]}')
    return dest


def zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return target
