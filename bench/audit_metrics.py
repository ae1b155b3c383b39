"""CPU time of the audit metrics' bootstrap (assay.audit) at audit scale.

    .venv/bin/python bench/audit_metrics.py [--cases 10000] [--resamples 1000] [--seed 0]

For synthetic binary, calibration and ordinal test sets of ``--cases`` cases, times
``assay.audit.figures`` (every metric with its stratified percentile interval from ``--resamples``
resamples) and ``assay.audit.summarise`` (a binary audit's whole document: headline, a subgroup table of
three groups, calibration, ROC) as process CPU time, which a busy shared machine inflates far less than wall time. As a
baseline it times scikit-learn called once per resample on the drawn cases for a few resamples and
scales that to ``--resamples``: what the vectorised kernels save. Prints JSON with the CPU model and
load average (bench/measure.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn import metrics as skm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import load_average, machine  # noqa: E402

from assay.audit import BinaryTask, CalibrationTask, OrdinalTask, figures, summarise  # noqa: E402


def synthetic(cases: int, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, cases)
    probability = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    grades = rng.choice(5, cases, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    graded = np.clip(grades + rng.integers(-1, 2, cases), 0, 4).astype(object)
    graded[rng.random(cases) < 0.03] = None
    return {
        "binary": BinaryTask.of(y, probability),
        "calibration": CalibrationTask.of(y, probability),
        "ordinal": OrdinalTask.of(grades, graded, [0, 1, 2, 3, 4], 2),
    }


def time_figures(task, resamples: int, seed: int) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    figures(task, resamples=resamples, seed=seed)
    return {
        "metrics": len(task.metrics),
        "cpu_s": round(time.process_time() - cpu, 3),
        "wall_s": round(time.perf_counter() - wall, 3),
    }


def time_summary(task: BinaryTask, resamples: int, seed: int) -> dict[str, float]:
    """The binary audit's summary document, with a subgroup attribute of three groups."""
    rows = [
        {"case_id": str(i), "reference": int(y), "probability": float(p), "site": "ABC"[i % 3]}
        for i, (y, p) in enumerate(zip(task.reference, task.probability, strict=True))
    ]
    settings = {
        "task": "binary",
        "threshold": task.threshold,
        "subgroups": ["site"],
        "bootstrap": {"resamples": resamples, "seed": seed},
    }
    wall, cpu = time.perf_counter(), time.process_time()
    summarise(settings, rows)
    return {"cpu_s": round(time.process_time() - cpu, 3), "wall_s": round(time.perf_counter() - wall, 3)}


def sklearn_per_resample_cpu_s(task: BinaryTask, resamples: int, seed: int, sample: int = 20) -> float:
    """scikit-learn's nine binary metrics on ``sample`` resamples, scaled to ``resamples``."""
    rng = np.random.default_rng(seed)
    cpu = time.process_time()
    for _ in range(sample):
        idx = rng.integers(0, task.n, task.n)
        y, p = task.reference[idx], task.probability[idx]
        pred = p >= task.threshold
        skm.recall_score(y, pred), skm.recall_score(y, pred, pos_label=0)
        skm.precision_score(y, pred), skm.precision_score(y, pred, pos_label=0)
        skm.balanced_accuracy_score(y, pred), skm.f1_score(y, pred), skm.matthews_corrcoef(y, pred)
        skm.roc_auc_score(y, p), skm.average_precision_score(y, p)
    return round((time.process_time() - cpu) * resamples / sample, 1)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result: dict = {"machine": machine(), "cases": args.cases, "resamples": args.resamples}
    tasks = synthetic(args.cases, args.seed)
    result["figures"] = {name: time_figures(task, args.resamples, args.seed) for name, task in tasks.items()}
    result["binary_summary"] = time_summary(tasks["binary"], args.resamples, args.seed)
    result["sklearn_per_resample_binary_cpu_s"] = sklearn_per_resample_cpu_s(tasks["binary"], args.resamples, args.seed)
    result["machine"]["load_average_at_end"] = load_average()
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
