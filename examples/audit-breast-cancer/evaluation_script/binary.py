"""Binary figures of malignancy probabilities at the declared threshold, standard library only.

The platform recomputes them (and calibration) with bootstrap confidence intervals from the per-case rows.
"""

THRESHOLD = 0.5  # declared operating point: probability >= 0.5 means "malignant"


def _ratio(hits, total):
    return hits / total if total else None


def auroc(pairs):
    """Area under the ROC curve of (probability, reference) pairs as the Mann-Whitney statistic (ties
    count half); None with one class."""
    ranked = sorted(pairs)
    ranks = [0.0] * len(ranked)
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1  # the mean rank of a run of ties
        i = j + 1
    positives = sum(ref for _, ref in ranked)
    negatives = len(ranked) - positives
    if not positives or not negatives:
        return None
    rank_sum = sum(ranks[k] for k in range(len(ranked)) if ranked[k][1] == 1)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def figures(rows):
    """AUROC, sensitivity, specificity, balanced accuracy and Brier score of per-case rows."""
    pairs = [(row["probability"], row["reference"]) for row in rows]
    tp = sum(1 for p, r in pairs if r == 1 and p >= THRESHOLD)
    tn = sum(1 for p, r in pairs if r == 0 and p < THRESHOLD)
    positives = sum(r for _, r in pairs)
    negatives = len(pairs) - positives
    sensitivity, specificity = _ratio(tp, positives), _ratio(tn, negatives)
    balanced = None if sensitivity is None or specificity is None else (sensitivity + specificity) / 2
    return {
        "AUROC": auroc(pairs),
        "Sensitivity": sensitivity,
        "Specificity": specificity,
        "Balanced accuracy": balanced,
        "Brier": _ratio(sum((p - r) ** 2 for p, r in pairs), len(pairs)),
    }
