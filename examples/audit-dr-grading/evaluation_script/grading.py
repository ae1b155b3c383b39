"""Grading figures over the graded cases, standard library only.

A case without a predicted grade counts as ungradable: it lowers Coverage and is left out of the other
figures (as the audit library does, so the leaderboard's numbers and the audit summary's agree). The
platform recomputes every figure with bootstrap confidence intervals from the per-case rows.
"""

GRADES = (0, 1, 2, 3, 4)
REFERABLE_FROM = 2


def _ratio(hits, total):
    return hits / total if total else None


def quadratic_weighted_kappa(pairs):
    """Cohen's kappa with quadratic weights over (reference, prediction) pairs; None when undefined."""
    k = len(GRADES)
    n = len(pairs)
    if not n:
        return None
    observed = [[0] * k for _ in range(k)]
    for reference, prediction in pairs:
        observed[reference][prediction] += 1
    rows = [sum(observed[i]) for i in range(k)]
    cols = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    disagreement = expected = 0.0
    for i in range(k):
        for j in range(k):
            weight = (i - j) ** 2
            disagreement += weight * observed[i][j]
            expected += weight * rows[i] * cols[j] / n
    return None if expected == 0 else 1.0 - disagreement / expected


def figures(rows):
    """QWK, Accuracy, referable sensitivity/specificity (grade >= 2) and Coverage of per-case rows."""
    graded = [(row["reference"], row["prediction"]) for row in rows if row["prediction"] is not None]
    referable = [(r, p) for r, p in graded if r >= REFERABLE_FROM]
    non_referable = [(r, p) for r, p in graded if r < REFERABLE_FROM]
    return {
        "QWK": quadratic_weighted_kappa(graded),
        "Accuracy": _ratio(sum(1 for r, p in graded if r == p), len(graded)),
        "Referable sensitivity": _ratio(sum(1 for _, p in referable if p >= REFERABLE_FROM), len(referable)),
        "Referable specificity": _ratio(sum(1 for _, p in non_referable if p < REFERABLE_FROM), len(non_referable)),
        "Coverage": _ratio(len(graded), len(rows)),
    }
