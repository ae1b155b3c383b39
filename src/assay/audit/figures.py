"""The result of one metric: a value with its confidence interval, ready for JSON.

A metric that cannot be computed (one reference class, a zero denominator) is ``value=None`` with a
``reason``, never NaN: JSON has no NaN, and an auditor must see why a figure is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def finite_or_none(value: Any) -> float | None:
    """A float for JSON, or None for a missing, NaN or infinite value."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Figure:
    """A point estimate with its bootstrap percentile interval, over ``n`` cases.

    ``low``/``high`` are None when no interval was asked for or no resample defined the metric.
    """

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    reason: str | None = None

    def __post_init__(self) -> None:
        # NaN never survives into a Figure: it would become invalid JSON (or a silent null) downstream.
        object.__setattr__(self, "value", finite_or_none(self.value))
        object.__setattr__(self, "low", finite_or_none(self.low))
        object.__setattr__(self, "high", finite_or_none(self.high))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "low": self.low, "high": self.high, "n": self.n}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Estimate:
    """A point estimate before the bootstrap: a number, or None and why."""

    value: float | None
    reason: str | None = None

    @classmethod
    def of(cls, value: Any, reason_if_undefined: str) -> Estimate:
        """``value`` if it is a finite number, else undefined with ``reason_if_undefined``."""
        number = finite_or_none(value)
        return cls(number) if number is not None else cls(None, reason_if_undefined)
