"""The audit report's plots, drawn on the server with matplotlib's Agg backend from a summary document.

SVG (text kept as text) for the web page, PNG for the PDF. Output is deterministic — no date in the SVG
metadata, a fixed id salt — so the same summary always gives the same bytes (cacheable, diffable).
``pyplot`` is never used: its global figure registry is not safe across server threads.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@functools.cache
def _matplotlib() -> tuple[Any, Any, Any]:
    """matplotlib's pieces, imported at the first plot rather than at the server's start: every server process and
    embedded worker imports this module through the URL conf, and matplotlib was half a second of each start."""
    import matplotlib

    matplotlib.use("Agg")  # before anything imports a GUI backend; the server has no display
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return rc_context, FigureCanvasAgg, Figure


#: Figure size in inches and PNG resolution; 5.2 x 4 in at 150 dpi is 780 x 600 px, sharp on A4.
SIZE = (5.2, 4.0)
PNG_DPI = 150
#: Site colours (assay.css): ink, accent, and a muted grey for reference lines.
INK, ACCENT, MUTED = "#1f2933", "#1d4ed8", "#6b7280"

RC = {
    "svg.hashsalt": "assay-audit-report",  # stable element ids
    "svg.fonttype": "none",  # text stays text: selectable, searchable, smaller
    "text.parse_math": False,  # a host's label "$x$" is text, not mathtext (a malformed one would raise)
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.edgecolor": INK,
    "axes.labelcolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
}


def _render(draw: Callable[[Figure], None], fmt: str) -> str | bytes:
    rc_context, FigureCanvasAgg, Figure = _matplotlib()  # noqa: N806 - the classes, by their own names
    with rc_context(RC):
        figure = Figure(figsize=SIZE, layout="constrained")
        FigureCanvasAgg(figure)
        draw(figure)
        buffer = io.BytesIO()
        if fmt == "svg":
            figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
            text = buffer.getvalue().decode()
            return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: it is inlined in HTML
        figure.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
        return buffer.getvalue()


def _square(ax: Axes) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.grid(True, color="#e5e7eb", linewidth=0.6)
    ax.plot([0, 1], [0, 1], linestyle="--", color=MUTED, linewidth=1)


def roc(curve: dict[str, Any], auroc: dict[str, Any] | None, fmt: str = "svg") -> str | bytes:
    """ROC curve from ``{"fpr": [...], "tpr": [...]}``; the legend gives AUROC with its interval."""

    def draw(figure: Figure) -> None:
        ax = figure.add_subplot()
        _square(ax)
        label = "ROC"
        if auroc and auroc.get("value") is not None:
            label = f"AUROC {figure_text(auroc)}"
        ax.plot(curve["fpr"], curve["tpr"], color=ACCENT, linewidth=2, label=label)
        ax.set_xlabel("1 − specificity (false positive rate)")
        ax.set_ylabel("Sensitivity (true positive rate)")
        ax.legend(loc="lower right", frameon=False)

    return _render(draw, fmt)


def reliability(bins: list[dict[str, Any]], fmt: str = "svg") -> str | bytes:
    """Reliability diagram: observed positive fraction against mean predicted probability per bin."""
    filled = [b for b in bins if b.get("n") and b.get("mean_probability") is not None]

    def draw(figure: Figure) -> None:
        ax = figure.add_subplot()
        _square(ax)
        if filled:
            ax.plot(
                [b["mean_probability"] for b in filled],
                [b["observed"] for b in filled],
                marker="o",
                color=ACCENT,
                linewidth=2,
                label="model",
            )
        ax.plot([], [], linestyle="--", color=MUTED, label="perfect calibration")
        ax.set_xlabel("Mean predicted probability")
        ax.set_ylabel("Observed fraction positive")
        ax.legend(loc="upper left", frameon=False)

    return _render(draw, fmt)


def confusion(confusion: dict[str, Any], fmt: str = "svg") -> str | bytes:
    """Confusion-matrix heatmap, reference grades as rows, predictions as columns, counts in the cells."""
    labels = [str(label) for label in confusion["labels"]]
    matrix = confusion["matrix"]
    ungraded = confusion.get("ungraded") or []
    if any(ungraded):  # ordinal cases the model left without a grade: a last column
        matrix = [[*row, extra] for row, extra in zip(matrix, ungraded, strict=False)]
    top = max((max(row) for row in matrix if row), default=0) or 1

    def draw(figure: Figure) -> None:
        ax = figure.add_subplot()
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=top)
        columns = labels + ["no grade"] * (len(matrix[0]) - len(labels))
        ax.set_xticks(range(len(columns)), columns)
        ax.set_yticks(range(len(matrix)), labels[: len(matrix)])
        ax.set_xlabel("Prediction")
        ax.set_ylabel("Reference")
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                ax.text(j, i, str(count), ha="center", va="center", color="white" if count > top / 2 else INK)

    return _render(draw, fmt)


def figure_text(figure: dict[str, Any], digits: int = 3) -> str:
    """``0.912 (0.894–0.930)``; the interval is left out when there is none."""
    value = figure.get("value")
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    if figure.get("low") is not None and figure.get("high") is not None:
        text += f" ({figure['low']:.{digits}f}–{figure['high']:.{digits}f})"
    return text


def plots(document: dict[str, Any], fmt: str = "svg") -> dict[str, str | bytes]:
    """Every plot the summary has data for, by name (``roc``, ``reliability``, ``confusion``)."""
    out: dict[str, str | bytes] = {}
    curves = document.get("curves") or {}
    if curves.get("roc") and curves["roc"].get("fpr"):
        out["roc"] = roc(curves["roc"], (document.get("headline") or {}).get("auroc"), fmt)
    calibration = document.get("calibration") or {}
    if calibration.get("reliability"):
        out["reliability"] = reliability(calibration["reliability"], fmt)
    matrix = document.get("confusion") or {}
    if matrix.get("labels") and matrix.get("matrix"):
        out["confusion"] = confusion(matrix, fmt)
    return out
