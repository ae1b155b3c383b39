"""Builds the diabetic-retinopathy audit template's generated files, deterministically (fixed seed).

The cases are SYNTHETIC: no real patient or image stands behind them. Each case has a reference grade
(0-4, referable at 2 or more), an age band, a sex and the camera that took the image. The sample
submission comes from a simulated model that grades handheld-camera images worse than desktop ones
(more ungradable images, more under-grading), so the audit's subgroup table shows a gap.

    python build.py [TARGET]

writes into TARGET (default: this folder, where the generated files are git-ignored); a TARGET
elsewhere also gets the bundle's fixed files, so it is a complete bundle. Standard library only; the
same seed gives the same bytes on every machine.
"""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261202
N_CASES = 600
GRADES = (0, 1, 2, 3, 4)
AGE_BANDS = (("18-44", 0.25), ("45-64", 0.45), ("65+", 0.30))
SEXES = (("F", 0.5), ("M", 0.5))
CAMERAS = (("desktop-A", 0.45), ("desktop-B", 0.35), ("handheld", 0.20))
# P(grade) by age band: older patients have more (and more severe) retinopathy.
GRADE_WEIGHTS = {
    "18-44": (0.68, 0.13, 0.11, 0.05, 0.03),
    "45-64": (0.56, 0.15, 0.15, 0.08, 0.06),
    "65+": (0.48, 0.16, 0.18, 0.10, 0.08),
}
# The simulated model: chance of no grade (ungradable image), of a wrong grade, and that a wrong grade is too low.
MODEL = {
    "desktop-A": (0.02, 0.12, 0.5),
    "desktop-B": (0.02, 0.15, 0.5),
    "handheld": (0.08, 0.42, 0.9),
}
TEMPLATE = "questionnaire-fg-ai4h-v1.yaml"

GENERATED = (
    "annotations/test_annotations.json",
    "annotations/case_metadata.csv",
    "sample/submission.json",
    "audit/questionnaire.yaml",
)
FIXED = ("challenge_config.yaml", "logo.png", "evaluation_script", "templates", "sample/answers.yaml")


def _pick(rng: random.Random, weighted) -> str:
    """One value of ``weighted`` ((value, weight), ...) from a single draw, so the stream is stable."""
    draw, total = rng.random(), 0.0
    for value, weight in weighted:
        total += weight
        if draw < total:
            return value
    return weighted[-1][0]


def cases() -> list[dict]:
    """The synthetic test set: case_id, grade, age_band, sex, camera."""
    rng = random.Random(SEED)
    out = []
    for i in range(1, N_CASES + 1):
        age = _pick(rng, AGE_BANDS)
        sex = _pick(rng, SEXES)
        camera = _pick(rng, CAMERAS)
        grade = _pick(rng, tuple(zip(GRADES, GRADE_WEIGHTS[age], strict=True)))
        out.append({"case_id": f"dr-{i:04d}", "grade": grade, "age_band": age, "sex": sex, "camera": camera})
    return out


def predictions(test_set: list[dict]) -> dict[str, int | None]:
    """The simulated model's grades (None: it found the image ungradable), from its own seeded stream."""
    rng = random.Random(SEED + 1)
    out: dict[str, int | None] = {}
    for case in test_set:
        ungradable, wrong, too_low = MODEL[case["camera"]]
        grade = case["grade"]
        draws = [rng.random() for _ in range(4)]  # always four draws a case: one case never shifts the next
        if draws[0] < ungradable:
            out[case["case_id"]] = None
            continue
        if draws[1] >= wrong:
            out[case["case_id"]] = grade
            continue
        step = 1 if draws[2] < 0.85 else 2
        down = draws[3] < too_low
        guess = grade - step if down else grade + step
        if not GRADES[0] <= guess <= GRADES[-1]:
            guess = grade + step if down else grade - step
        out[case["case_id"]] = guess
    return out


def questionnaire_template() -> Path:
    """The FG-AI4H v1 questionnaire shipped with Assay (package data of assay.bundle), found without importing assay."""
    spec = importlib.util.find_spec("assay")
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    roots.append(HERE.parents[1] / "src" / "assay")  # a source checkout
    for root in roots:
        path = root / "bundle" / "templates" / TEMPLATE
        if path.is_file():
            return path
    raise FileNotFoundError(f"{TEMPLATE} not found in the installed assay package (assay/bundle/templates/)")


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def build(target: Path | str | None = None) -> list[Path]:
    """Write the generated files into ``target`` (default: this folder) and return their paths."""
    target = Path(target).resolve() if target is not None else HERE
    if target != HERE:
        for name in FIXED:
            source, dest = HERE / name, target / name
            if source.is_dir():
                shutil.copytree(source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)
    test_set = cases()
    reference = {case["case_id"]: case["grade"] for case in test_set}
    metadata = "case_id,age_band,sex,camera\n" + "".join(
        f"{c['case_id']},{c['age_band']},{c['sex']},{c['camera']}\n" for c in test_set
    )
    return [
        _write(target / GENERATED[0], json.dumps(reference, indent=0) + "\n"),
        _write(target / GENERATED[1], metadata),
        _write(target / GENERATED[2], json.dumps(predictions(test_set), indent=0) + "\n"),
        _write(target / GENERATED[3], questionnaire_template().read_bytes()),
    ]


if __name__ == "__main__":
    for written in build(sys.argv[1] if len(sys.argv) > 1 else None):
        print(written)
