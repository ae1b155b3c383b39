"""Hand-written SVG charts, rendered on the server: no chart library, no JavaScript, no CDN.

The score-over-time chart shows every leaderboard entry as a dot and the best score so far as a step
line. It is an ``<svg role="img">`` with a title and a description; the page shows the same numbers in a
table for screen readers and for people who want exact values.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 260
# room for tick labels at the phone stylesheet's larger font (assay.css scales .tick up below 40rem)
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 84, 16, 16, 40


@dataclass(frozen=True)
class Point:
    at: dt.datetime
    value: float
    team: str
    baseline: bool = False


def _fmt(value: float, precision: int) -> str:
    return f"{value:.{precision}f}"


def _nice_step(span: float, count: int) -> float:
    """A step of 1, 2 or 5 times a power of ten that cuts ``span`` into about ``count`` pieces."""
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def value_axis(values: list[float], precision: int) -> tuple[float, float, list[float]]:
    """The value axis (low, high, ticks) for ``values``: round ticks that enclose them. Scores that all lie
    in [0, 1] (accuracies, AUCs) never get an axis beyond 0 or 1 — one point at 0.575 used to give
    −0.425…1.575, two at 1.0 gave 0…2.0."""
    lo, hi = min(values), max(values)
    if hi == lo:  # one value: a narrow band around it, as wide as the split's decimals can tell apart
        pad = max(abs(lo) * 0.05, 2 * 10.0**-precision)
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, 4)
    lo, hi = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    if 0.0 <= min(values) and max(values) <= 1.0:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    ticks = [lo + i * step for i in range(round((hi - lo) / step) + 1)]
    return lo, hi, [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]


def time_labels(t0: float, t1: float) -> tuple[str, str]:
    """The time axis's two end labels; with the time of day when both ends fall on one date."""
    start, end = (dt.datetime.fromtimestamp(t, tz=dt.UTC) for t in (t0, t1))
    fmt = "%Y-%m-%d" if start.date() != end.date() else "%Y-%m-%d %H:%M"
    return f"{start:{fmt}}", f"{end:{fmt}} UTC"


def score_history_svg(points: list[Point], *, label: str, higher_is_better: bool, precision: int = 2) -> str:
    """An SVG of ``points`` over time with the running best as a step line ('' when nothing to draw)."""
    points = sorted((p for p in points if math.isfinite(p.value)), key=lambda p: p.at)
    if not points:
        return ""
    t0, t1 = points[0].at.timestamp(), points[-1].at.timestamp()
    if t1 == t0:
        t0, t1 = t0 - 3600, t1 + 3600
    lo, hi, ticks = value_axis([p.value for p in points], precision)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(at: dt.datetime) -> float:
        return PAD_LEFT + (at.timestamp() - t0) / (t1 - t0) * plot_w

    def y(v: float) -> float:
        return PAD_TOP + (hi - v) / (hi - lo) * plot_h

    best_path: list[str] = []
    best: float | None = None
    for p in points:
        if best is None or (p.value > best if higher_is_better else p.value < best):
            if best is not None:
                best_path.append(f"L{x(p.at):.1f},{y(best):.1f}")
            best = p.value
            best_path.append(("M" if len(best_path) == 0 else "L") + f"{x(p.at):.1f},{y(best):.1f}")
    assert best is not None
    best_path.append(f"L{PAD_LEFT + plot_w:.1f},{y(best):.1f}")

    direction = "higher" if higher_is_better else "lower"
    title = f"{label} of every entry over time"
    desc = (
        f"{len(points)} entries from {points[0].at:%Y-%m-%d} to {points[-1].at:%Y-%m-%d}; "
        f"best {label} {_fmt(best, precision)} ({direction} is better)."
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title><desc id="chart-desc">{escape(desc)}</desc>',
    ]
    for tick in ticks:
        ty = y(tick)
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{PAD_LEFT + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="tick" x="{PAD_LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">{_fmt(tick, precision)}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{PAD_LEFT}" x2="{PAD_LEFT + plot_w}" y1="{PAD_TOP + plot_h}" y2="{PAD_TOP + plot_h}"/>'
    )
    start, end = time_labels(t0, t1)
    parts.append(
        f'<text class="tick" x="{PAD_LEFT}" y="{HEIGHT - 12}" text-anchor="start">{start}</text>'
        f'<text class="tick" x="{PAD_LEFT + plot_w}" y="{HEIGHT - 12}" text-anchor="end">{end}</text>'
    )
    parts.append(f'<path class="best" d="{" ".join(best_path)}" fill="none"/>')
    for p in points:
        cls = "dot baseline" if p.baseline else "dot"
        tip = f"{p.team}: {_fmt(p.value, precision)} on {p.at:%Y-%m-%d %H:%M} UTC"
        parts.append(f'<circle class="{cls}" cx="{x(p.at):.1f}" cy="{y(p.value):.1f}" r="4">')
        parts.append(f"<title>{escape(tip)}</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def daily_bars_svg(days: list[tuple[dt.date, int, int]], *, label: str = "Submissions") -> str:
    """Bars of ``(day, count, failed)`` per day, the failed part drawn darker ('' when nothing to draw).

    Days without submissions are drawn as gaps, so the time axis is true; the table beside it has the numbers."""
    days = sorted(d for d in days if d[1] > 0)
    if not days:
        return ""
    first, last = days[0][0], days[-1][0]
    span = (last - first).days + 1
    counts = {day: (n, failed) for day, n, failed in days}
    _, hi, ticks = value_axis([0.0, float(max(n for _, n, _ in days))], 0)
    hi = max(hi, 1.0)
    ticks = [t for t in ticks if t == int(t)]
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / span
    bar_w = max(slot * 0.8, 1.0)

    def y(v: float) -> float:
        return PAD_TOP + (hi - v) / hi * plot_h

    total = sum(n for _, n, _ in days)
    failed_total = sum(f for _, _, f in days)
    title = f"{label} per day"
    desc = f"{total} from {first:%Y-%m-%d} to {last:%Y-%m-%d} UTC, {failed_total} of them failed; busiest day " + (
        f"{max(days, key=lambda d: d[1])[0]:%Y-%m-%d} with {max(n for _, n, _ in days)}."
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="daily-title daily-desc"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f'<title id="daily-title">{escape(title)}</title><desc id="daily-desc">{escape(desc)}</desc>',
    ]
    for tick in ticks:
        ty = y(tick)
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{PAD_LEFT + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="tick" x="{PAD_LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">{int(tick)}</text>'
        )
    base = PAD_TOP + plot_h
    parts.append(f'<line class="axis" x1="{PAD_LEFT}" x2="{PAD_LEFT + plot_w}" y1="{base}" y2="{base}"/>')
    for i in range(span):
        day = first + dt.timedelta(days=i)
        if day not in counts:
            continue
        n, failed = counts[day]
        bx = PAD_LEFT + i * slot + (slot - bar_w) / 2
        tip = f"{day:%Y-%m-%d}: {n} submitted, {failed} failed"
        parts.append(f"<g><title>{escape(tip)}</title>")
        parts.append(f'<rect class="bar" x="{bx:.1f}" y="{y(n):.1f}" width="{bar_w:.1f}" height="{base - y(n):.1f}"/>')
        if failed:
            parts.append(
                f'<rect class="bar failed" x="{bx:.1f}" y="{y(failed):.1f}" width="{bar_w:.1f}"'
                f' height="{base - y(failed):.1f}"/>'
            )
        parts.append("</g>")
    end = f"{last:%Y-%m-%d} UTC" if span > 1 else "UTC"
    parts.append(
        f'<text class="tick" x="{PAD_LEFT}" y="{HEIGHT - 12}" text-anchor="start">{first:%Y-%m-%d}</text>'
        f'<text class="tick" x="{PAD_LEFT + plot_w}" y="{HEIGHT - 12}" text-anchor="end">{end}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
