"""Builds the breast-cancer audit template's generated files, deterministically (fixed seed).

Data: scikit-learn's bundled copy of the Wisconsin Diagnostic Breast Cancer set
(``sklearn.datasets.load_breast_cancer``: 569 cases, 30 features; no download). Case ``wdbc-NNN`` is
row NNN of that table. Reference 1 = malignant, 0 = benign (scikit-learn codes them the other way round).

- split: a seeded, stratified 70/30 train/test split of the rows (standard library ``random``);
- site: a SYNTHETIC attribute — every case is assigned to site A, B or C with the same seeded stream; the
  real data has no site. Site C stands for a clinic whose measurements are noisier: the build adds
  seeded noise to site C's test features before the sample model predicts them, so the audit's
  subgroup table has a gap to show;
- sample submission: a logistic regression (scikit-learn, standardised features) trained on the train
  rows, its probabilities of malignancy for the test rows, rounded to 6 decimals.

    python build.py [TARGET]

writes into TARGET (default: this folder, where the generated files are git-ignored); a TARGET elsewhere
also gets the bundle's fixed files, so it is a complete bundle. Needs NumPy and scikit-learn (Assay's
``audit`` extra).
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
TEST_SHARE = 0.3
SITES = (("A", 0.40), ("B", 0.35), ("C", 0.25))
SITE_C_NOISE = 1.2  # standard deviations of noise added to site C's standardised test features
TEMPLATE = "questionnaire-fg-ai4h-v1.yaml"

GENERATED = (
    "annotations/test_annotations.json",
    "annotations/case_metadata.csv",
    "sample/submission.json",
    "audit/questionnaire.yaml",
)
FIXED = ("challenge_config.yaml", "logo.png", "evaluation_script", "templates", "sample/answers.yaml")


def _pick(rng: random.Random, weighted) -> str:
    draw, total = rng.random(), 0.0
    for value, weight in weighted:
        total += weight
        if draw < total:
            return value
    return weighted[-1][0]


def dataset():
    """(features, reference) with reference 1 = malignant."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return data.data, [1 - int(t) for t in data.target]


def split(reference: list[int]) -> tuple[list[int], list[int]]:
    """Train and test row numbers: a seeded shuffle per class, the first 30% of each class to test."""
    rng = random.Random(SEED)
    train, test = [], []
    for label in (0, 1):
        rows = [i for i, y in enumerate(reference) if y == label]
        rng.shuffle(rows)
        cut = round(len(rows) * TEST_SHARE)
        test += rows[:cut]
        train += rows[cut:]
    return sorted(train), sorted(test)


def sites(n: int) -> list[str]:
    rng = random.Random(SEED + 1)
    return [_pick(rng, SITES) for _ in range(n)]


def case_id(row: int) -> str:
    return f"wdbc-{row:03d}"


def sample_probabilities(features, reference: list[int], train: list[int], test: list[int], site: list[str]):
    """The sample model: logistic regression on the train rows; site C's test features get seeded noise."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features[train])
    model = LogisticRegression(max_iter=5000).fit(scaler.transform(features[train]), np.array(reference)[train])
    shown = scaler.transform(features[test])
    noise = np.random.RandomState(SEED).normal(0.0, SITE_C_NOISE, size=shown.shape)
    at_c = np.array([site[row] == "C" for row in test])
    shown[at_c] += noise[at_c]
    malignant = model.predict_proba(shown)[:, list(model.classes_).index(1)]
    return {case_id(row): round(float(p), 6) for row, p in zip(test, malignant, strict=True)}


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
    path.write_bytes(text.encode() if isinstance(text, str) else text)
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
    features, reference = dataset()
    train, test = split(reference)
    site = sites(len(reference))
    annotations = {case_id(row): reference[row] for row in test}
    metadata = "case_id,site\n" + "".join(f"{case_id(row)},{site[row]}\n" for row in test)
    submission = sample_probabilities(features, reference, train, test, site)
    return [
        _write(target / GENERATED[0], json.dumps(annotations, indent=0) + "\n"),
        _write(target / GENERATED[1], metadata),
        _write(target / GENERATED[2], json.dumps(submission, indent=0) + "\n"),
        _write(target / GENERATED[3], questionnaire_template().read_bytes()),
    ]


if __name__ == "__main__":
    for written in build(sys.argv[1] if len(sys.argv) > 1 else None):
        print(written)
