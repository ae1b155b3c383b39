"""Confidence intervals beside leaderboard scores, and the one rule for "statistically tied with the leader".

An entry's ``intervals`` is ``{label: [low, high]}``. They come from the evaluation script (the Assay output
key ``intervals``, written with the entries) or from an audit summary's bootstrap (:func:`set_intervals`).
Every face (web page, /api/v1, the CLI, CSV exports) asks :func:`tied_with_leader`, so the rule is said once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from assay.server.challenges.services.phase_rules import split_rules
from assay.server.submissions.models import Submission

from ..models import LeaderboardEntry
from .errors import LeaderboardError

Interval = tuple[float, float]
MAX_PROBLEMS = 20  # a hostile mapping with 10⁶ bad keys gets a short answer


class IntervalError(LeaderboardError):
    """Intervals refused: not two finite numbers with low <= high, or an unknown split or label."""


def interval_problem(value: Any) -> str | None:
    """Why ``value`` is not ``[low, high]`` (two finite numbers, low <= high), or None when it is."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return "must be [low, high]"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return "must be two numbers"
    if not all(math.isfinite(v) for v in value):
        return "must be finite numbers"
    if value[0] > value[1]:
        return "has low above high"
    return None


def _cleaned(submission: Submission, by_split: Any) -> dict[int, dict[str, list[float]]]:
    """``by_split`` checked against the phase's splits and board labels: {phase_split_id: {label: [low, high]}}."""
    if not isinstance(by_split, Mapping):
        raise IntervalError("bad_intervals", "intervals must map split codenames to {label: [low, high]}")
    rules = {rule.codename: rule for rule in split_rules(submission.phase_id)}
    problems: list[str] = []
    cleaned: dict[int, dict[str, list[float]]] = {}
    for codename, labels in by_split.items():
        rule = rules.get(codename)
        if rule is None:
            problems.append(f"unknown split {str(codename)[:100]!r}")
            continue
        if not isinstance(labels, Mapping):
            problems.append(f"split {codename!r}: must map labels to [low, high]")
            continue
        for label, pair in labels.items():
            if label not in rule.labels:
                problems.append(f"split {codename!r}: unknown label {str(label)[:100]!r}")
            elif (why := interval_problem(pair)) is not None:
                problems.append(f"split {codename!r}, label {label!r}: {why}")
            else:
                cleaned.setdefault(rule.phase_split_id, {})[label] = [float(pair[0]), float(pair[1])]
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise IntervalError("bad_intervals", f"intervals refused: {problems[0]}", problems=problems[:MAX_PROBLEMS])
    return cleaned


def set_intervals(submission: Submission, by_split: Mapping[str, Mapping[str, Sequence[float]]]) -> int:
    """Store ``{split_codename: {label: [low, high]}}`` on ``submission``'s current entries; returns how many
    entries changed. Labels given replace the same labels' intervals, others stay (a script's and an audit's
    may differ in labels). Nothing is written unless all of it is valid (:class:`IntervalError`).

    Each entry is saved (not ``update()``d) so the entry receivers bump the cached leaderboard pages."""
    cleaned = _cleaned(submission, by_split)
    if not cleaned:
        return 0
    changed = 0
    with transaction.atomic():
        entries = LeaderboardEntry.objects.select_for_update().filter(
            submission=submission, is_disabled=False, phase_split_id__in=list(cleaned)
        )
        for entry in entries:
            merged = {**(entry.intervals or {}), **cleaned[entry.phase_split_id]}
            if merged != entry.intervals:
                entry.intervals = merged
                entry.save(update_fields=["intervals"])
                changed += 1
    return changed


def interval_of(intervals: Mapping[str, Any] | None, label: str) -> Interval | None:
    """The stored interval of ``label`` (None when missing or malformed: old rows are never trusted blindly)."""
    pair = (intervals or {}).get(label)
    if pair is None or interval_problem(pair) is not None:
        return None
    return float(pair[0]), float(pair[1])


def tied_with_leader(interval: Interval | None, leader: Interval | None, *, is_leader: bool = False) -> bool | None:
    """THE rule: an entry is statistically tied with the leader when its interval on the board's sort label
    overlaps the leader's. None when it cannot be said: either interval is missing, there is no leader, or
    the entry is the leader itself."""
    if is_leader or interval is None or leader is None:
        return None
    return interval[0] <= leader[1] and leader[0] <= interval[1]
