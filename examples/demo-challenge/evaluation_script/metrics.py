"""Metrics for binary labels, standard library only."""


def accuracy(truth: dict, predicted: dict) -> float:
    if not truth:
        return 0.0
    return sum(1 for key, label in truth.items() if predicted.get(key) == label) / len(truth)


def f1_positive(truth: dict, predicted: dict) -> float:
    tp = sum(1 for k, v in truth.items() if v == 1 and predicted.get(k) == 1)
    fp = sum(1 for k, v in truth.items() if v == 0 and predicted.get(k) == 1)
    fn = sum(1 for k, v in truth.items() if v == 1 and predicted.get(k) != 1)
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)
