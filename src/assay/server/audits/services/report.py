"""The audit report: what it says, gathered once for the web page and the PDF (one template renders both).

``report_context`` turns a submission's stored audit (summary document, questionnaire answers, reviews,
release, manifest) into plain values a template prints as they are: no rule or lookup is left to the
template. Who may read the report is not decided here: the faces ask ``access.may_read_audit`` first.
``pdf`` turns the rendered HTML into PDF bytes with WeasyPrint, fetching nothing but inline images.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from typing import Any

from django.urls import reverse

from assay.bundle.questionnaire import Questionnaire as QuestionnaireSchema
from assay.server.data_packages.models import DataPackage
from assay.server.data_packages.services.access import can_view
from assay.server.submissions.models import Submission

from ..models import AnswerSet, AuditSummary, Review
from . import access, plots
from . import manifest as manifests

#: Readers' names of the audit figures (``assay.audit``); others are shown as their id, spaced.
METRIC_NAMES = {
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "ppv": "PPV (precision)",
    "npv": "NPV",
    "balanced_accuracy": "Balanced accuracy",
    "f1": "F1 score",
    "mcc": "Matthews correlation (MCC)",
    "auroc": "AUROC",
    "auprc": "AUPRC (average precision)",
    "qwk": "Quadratic weighted kappa (QWK)",
    "accuracy": "Accuracy",
    "referable_sensitivity": "Referable sensitivity",
    "referable_specificity": "Referable specificity",
    "coverage": "Coverage (cases graded)",
    "macro_f1": "Macro F1",
    "kappa": "Cohen's kappa",
    "mae": "Mean absolute error",
    "rmse": "Root mean squared error",
    "bias": "Bias (prediction − reference)",
    "r2": "R²",
    "brier": "Brier score",
    "log_loss": "Log-loss",
    "ece": "Expected calibration error (ECE)",
    "slope": "Calibration slope",
    "intercept": "Calibration intercept",
}

#: The model's intended use, read from the questionnaire's answers: (heading, likely question ids, words
#: a question's text would contain). The ids are those of the FG-AI4H template; a host's own questionnaire
#: is matched by the words.
INTENDED_USE = (
    ("Medical purpose", ("intended_use", "medical_purpose", "purpose"), ("medical purpose", "intended use")),
    ("Target population", ("target_population", "population"), ("target population",)),
    ("Intended user", ("intended_user", "intended_users", "users"), ("intended user", "who will use")),
    # FG-AI4H's template asks the significance of the output (IMDRF's axis of the risk category)
    ("Risk tier", ("risk_tier", "risk_class", "risk_category", "output_significance"), ("risk tier", "risk class")),
)
#: Words by which a purpose question also asks for the population and the users (FG-AI4H's ``intended_use``:
#: "... for which patients, and who uses its output?"): those two then point to its answer.
PURPOSE_COVERS = {"Target population": ("patients", "population"), "Intended user": ("who uses", "users")}
#: Questions whose answers are the model's known limitations (ids containing it, or text mentioning it).
LIMITATION_WORDS = ("limitation", "failure mode", "known risk")
#: Metrics per subgroup table, so a table fits the page and the A4 PDF.
METRICS_PER_TABLE = 3
#: A per-question rating at or below this is carried into the recommendations.
LOW_RATING = 2
TASK_NAMES = {
    "binary": "Binary classification",
    "ordinal": "Ordinal grading",
    "multiclass": "Multiclass classification",
    "regression": "Regression",
}


def in_order(figures: dict[str, Any]) -> list[str]:
    """The metrics of ``figures`` in reading order (``METRIC_NAMES``'; others after, by name): the stored
    document's key order is not kept (PostgreSQL's jsonb sorts keys by length)."""
    known = list(METRIC_NAMES)
    return sorted(figures, key=lambda m: (known.index(m) if m in known else len(known), m))


def metric_name(metric: str) -> str:
    if metric.startswith("recall:"):
        return f"Recall of {metric.split(':', 1)[1]}"
    return METRIC_NAMES.get(metric, metric.replace("_", " ").capitalize())


def number(value: Any, digits: int = 3) -> str:
    """A figure as printed in the report; "—" for an undefined one."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}".replace("-", "−")
    return f"{value:.{digits}f}".replace("-", "−")  # a true minus sign: it does not break a line or a range


def interval(figure: dict[str, Any]) -> str:
    """``0.858–0.952``; ``−0.783 to −0.163`` when a bound is negative (a dash between minus signs misreads)."""
    low, high = figure.get("low"), figure.get("high")
    if low is None or high is None:
        return ""
    return f"{number(low)} to {number(high)}" if low < 0 else f"{number(low)}–{number(high)}"


def signed(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:+.3f}".replace("-", "−")


def _figure_row(metric: str, figure: dict[str, Any]) -> dict[str, Any]:
    return {
        "metric": metric,
        "name": metric_name(metric),
        "value": number(figure.get("value")),
        "interval": interval(figure),
        "n": figure.get("n"),
        "reason": figure.get("reason") or "",
    }


# --- the summary's parts -----------------------------------------------------------------------------------


def class_balance(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Cases per reference class: the confusion matrix's row sums and ungraded cases (ordinal,
    multiclass), or positives and negatives from the reliability bins' counts (binary: each bin holds its
    cases and their observed positive fraction). Empty for regression."""
    confusion = document.get("confusion") or {}
    reliability = (document.get("calibration") or {}).get("reliability") or []
    if confusion.get("matrix"):
        ungraded = confusion.get("ungraded") or [0] * len(confusion["matrix"])
        counts = [sum(row) + extra for row, extra in zip(confusion["matrix"], ungraded, strict=False)]
        pairs = list(zip(confusion["labels"], counts, strict=False))
    elif reliability:
        positives = round(sum(b["n"] * b["observed"] for b in reliability if b.get("n")))
        total = sum(b.get("n") or 0 for b in reliability)
        pairs = [("negative (0)", total - positives), ("positive (1)", positives)]
    else:
        return []
    total = sum(count for _, count in pairs) or 1
    return [{"label": str(label), "n": count, "share": f"{100 * count / total:.1f} %"} for label, count in pairs]


def subgroup_tables(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Per attribute, tables of at most ``METRICS_PER_TABLE`` metrics: a row per group with n, each
    metric's value, interval and gap to the overall figure; suppressed groups keep their n and say so;
    the foot names the worst shown group and the worst-group ratio."""
    report = document.get("subgroups") or {}
    overall = report.get("overall") or document.get("headline") or {}
    metrics = in_order(overall)
    min_n = report.get("min_n")
    out = []
    for table in report.get("attributes") or []:
        worst = table.get("worst") or {}
        parts = []
        for start in range(0, len(metrics), METRICS_PER_TABLE):
            chunk = metrics[start : start + METRICS_PER_TABLE]
            rows = []
            for row in table.get("rows") or []:
                cells = []
                for metric in chunk:
                    figure = (row.get("figures") or {}).get(metric) or {}
                    cells.append(
                        {
                            "value": number(figure.get("value")),
                            "interval": interval(figure),
                            "gap": signed((row.get("gap") or {}).get(metric)),
                        }
                    )
                rows.append(
                    {
                        "group": str(row.get("group")),
                        "n": row.get("n"),
                        "suppressed": bool(row.get("suppressed")),
                        "cells": cells,
                    }
                )
            foot = []
            for metric in chunk:
                w = worst.get(metric)
                foot.append(
                    {"group": str(w["group"]), "value": number(w.get("value")), "ratio": number(w.get("ratio"))}
                    if w
                    else None
                )
            overall_cells = [
                {"value": number((overall.get(m) or {}).get("value")), "interval": interval(overall.get(m) or {})}
                for m in chunk
            ]
            parts.append(
                {
                    "metrics": [metric_name(m) for m in chunk],
                    "span": 2 * len(chunk),
                    "overall": overall_cells,
                    "rows": rows,
                    "worst": foot,
                }
            )
        suppressed = [str(r.get("group")) for r in table.get("rows") or [] if r.get("suppressed")]
        out.append({"attribute": table.get("attribute"), "parts": parts, "suppressed": suppressed, "min_n": min_n})
    return out


def calibration(document: dict[str, Any]) -> list[dict[str, Any]]:
    figures = ((document.get("calibration") or {}).get("figures")) or {}
    return [_figure_row(metric, figures[metric]) for metric in in_order(figures)]


# --- the questionnaire, reviews and release ----------------------------------------------------------------


def answer_text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _answer_set(submission: Submission) -> AnswerSet | None:
    try:
        return submission.answers
    except AnswerSet.DoesNotExist:
        return None


def _schema(answer_set: AnswerSet | None) -> QuestionnaireSchema | None:
    if answer_set is None:
        return None
    return QuestionnaireSchema.model_validate(answer_set.questionnaire.schema)


def questionnaire_sections(
    schema: QuestionnaireSchema | None, answers: dict[str, Any], reviews: list[Review]
) -> list[dict[str, Any]]:
    """Each section's questions with the team's answer and every reviewer's rating and comment."""
    if schema is None:
        return []
    sections = []
    for section in schema.sections:
        questions = []
        for q in section.questions:
            ratings = []
            for review in reviews:
                given = (review.ratings or {}).get(q.id)
                if given:
                    ratings.append(
                        {
                            "reviewer": review.reviewer.get_username(),
                            "round": review.round,
                            "rating": given.get("rating"),
                            "comment": given.get("comment") or "",
                        }
                    )
            questions.append(
                {
                    "id": q.id,
                    "text": q.text,
                    "stage": q.stage,
                    "requirement": q.requirement,
                    "references": list(q.references),
                    "required": q.required,
                    "answer": answer_text(answers.get(q.id)),
                    "ratings": ratings,
                }
            )
        sections.append({"id": section.id, "title": section.title, "questions": questions})
    return sections


def intended_use(schema: QuestionnaireSchema | None, answers: dict[str, Any]) -> list[dict[str, str]]:
    """Medical purpose, target population, intended user and risk tier, from the answers when the
    questionnaire asks them (by the template's ids, else by the question's words); "not stated" else."""
    questions = list(schema.questions()) if schema else []
    out: list[dict[str, str]] = []
    purpose = None
    for heading, ids, words in INTENDED_USE:
        question = next((q for q in questions if q.id in ids), None) or next(
            (q for q in questions if any(w in q.text.lower() for w in words)), None
        )
        if heading == "Medical purpose":
            purpose = question
        value = answer_text(answers.get(question.id)) if question else ""
        if (
            not question
            and purpose is not None
            and any(w in purpose.text.lower() for w in PURPOSE_COVERS.get(heading, ()))
        ):
            value = "see the medical purpose" if answers.get(purpose.id) else ""  # its question is shown there
        out.append(
            {
                "heading": heading,
                "answer": value or "not stated",
                "stated": bool(value),
                "question": question.text if question else "",
            }
        )
    return out


def limitations(schema: QuestionnaireSchema | None, answers: dict[str, Any], document: dict[str, Any]) -> list[str]:
    """What the team says the model cannot do, and what the figures could not show (undefined figures,
    suppressed subgroups)."""
    out = []
    for q in schema.questions() if schema else []:
        if any(w in q.id.replace("_", " ") or w in q.text.lower() for w in LIMITATION_WORDS):
            text = answer_text(answers.get(q.id))
            if text:
                out.append(text)
    headline = document.get("headline") or {}
    for metric, figure in ((m, headline[m]) for m in in_order(headline)):
        if figure.get("value") is None:
            out.append(
                f"{metric_name(metric)} is undefined on this test set: {figure.get('reason') or 'no reason given'}."
            )
    report = document.get("subgroups") or {}
    for table in report.get("attributes") or []:
        small = [str(r.get("group")) for r in table.get("rows") or [] if r.get("suppressed")]
        if small:
            out.append(
                f"{table.get('attribute')}: group{'s' if len(small) > 1 else ''} {', '.join(small)} "
                f"had fewer than {report.get('min_n')} cases; no figures are shown for them."
            )
    return out


def recommendations(reviews: Iterable[Review], schema: QuestionnaireSchema | None) -> list[dict[str, str]]:
    """The reviewers' overall comments, and their comments on questions they rated low."""
    texts = {q.id: q.text for q in schema.questions()} if schema else {}
    out = []
    for review in reviews:
        who = f"{review.reviewer.get_username()} (round {review.round})"
        if review.comment.strip():
            out.append({"by": who, "about": "Overall", "text": review.comment.strip()})
        for qid, given in sorted((review.ratings or {}).items()):
            rating, comment = given.get("rating"), (given.get("comment") or "").strip()
            if comment and isinstance(rating, int) and rating <= LOW_RATING:
                out.append({"by": who, "about": texts.get(qid, qid), "text": comment})
    return out


def release_status(submission: Submission) -> dict[str, Any]:
    release = access.release_of(submission)
    if release is None:
        return {"state": "unreleased", "label": "Not released: the hosts and auditors see this report."}
    if release.state == release.State.RETRACTED:
        return {
            "state": "retracted",
            "label": "Retracted",
            "at": release.retracted_at,
            "by": release.retracted_by.get_username() if release.retracted_by else "",
            "reason": release.retraction_reason,
            "released_at": release.released_at,
        }
    return {
        "state": "released",
        "label": "Released",
        "at": release.released_at,
        "by": release.released_by.get_username(),
    }


# --- manifest ----------------------------------------------------------------------------------------------


def manifest(submission: Submission) -> dict[str, Any]:
    """The reproducibility manifest (``audits.services.manifest``): the one kept at release, if any."""
    return manifests.manifest_of(submission)


def test_data(built: dict[str, Any], viewer) -> dict[str, Any] | None:
    """The data package version the manifest names as the test data (``name``, ``version``), with the
    package page's ``url`` when ``viewer`` may read its card (``data_packages.services.access``), else None."""
    named = built.get("data_package")
    if not isinstance(named, dict):
        return None
    package = DataPackage.objects.filter(slug=named["name"]).first()
    shown = package is not None and can_view(viewer, package)
    url = reverse("web:data-package", args=[package.slug]) if shown else None
    return {"name": named["name"], "version": named["version"], "url": url}


def manifest_rows(document: dict[str, Any] | None, prefix: str = "") -> list[tuple[str, str]]:
    """The manifest flattened to (dotted key, value) rows for a table; lists of scalars joined."""
    rows: list[tuple[str, str]] = []
    for key in sorted(document or {}):
        value = document[key]
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += manifest_rows(value, name + ".")
        elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            rows.append((name, ", ".join(str(v) for v in value) or "—"))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                rows += (
                    manifest_rows(item, f"{name}[{i}].") if isinstance(item, dict) else [(f"{name}[{i}]", str(item))]
                )
        else:
            rows.append((name, "—" if value is None else str(value)))
    return rows


# --- the whole report --------------------------------------------------------------------------------------


def _summary(submission: Submission) -> AuditSummary | None:
    try:
        return submission.audit_summary
    except AuditSummary.DoesNotExist:
        return None


def report_context(submission: Submission, *, fmt: str = "svg", viewer=None) -> dict[str, Any]:
    """Everything the report shows, as plain values. ``fmt`` picks the plots' form: ``svg`` (inline in the
    page) or ``png`` (data URIs, for the PDF); ``viewer`` is who reads it (the test data's link is theirs
    to follow only when they may read the package's card)."""
    summary = _summary(submission)
    document = summary.document if summary else {}
    answer_set = _answer_set(submission)
    schema = _schema(answer_set)
    answers = answer_set.answers if answer_set else {}
    reviews = list(answer_set.reviews.select_related("reviewer")) if answer_set else []
    settings = document.get("settings") or submission.phase.audit or {}
    headline = document.get("headline") or {}
    drawn = plots.plots(document, fmt) if document else {}
    if fmt == "png":
        drawn = {name: "data:image/png;base64," + base64.b64encode(data).decode() for name, data in drawn.items()}
    built = manifest(submission)
    return {
        "submission": submission,
        "challenge": submission.phase.challenge,
        "phase": submission.phase,
        "team": submission.participant_team,
        "method": submission.method_name or "",
        "method_description": submission.method_description or "",
        "release": release_status(submission),
        "state": answer_set.get_state_display() if answer_set else "No answers yet",
        "summary": summary,
        "task": TASK_NAMES.get(document.get("task") or settings.get("task"), document.get("task") or "—"),
        "test_set": {
            "n": document.get("n"),
            "classes": class_balance(document),
            "subgroups": list(settings.get("subgroups") or []),
            "min_group_size": settings.get("min_group_size"),
            "threshold": settings.get("threshold"),
            "referable_from": settings.get("referable_from"),
        },
        "bootstrap": settings.get("bootstrap") or {},
        "headline": [_figure_row(m, headline[m]) for m in in_order(headline)],
        "subgroups": subgroup_tables(document),
        "calibration": calibration(document),
        "plots": drawn,
        "plot_format": fmt,
        "intended_use": intended_use(schema, answers),
        "questionnaire": {"title": schema.title, "version": schema.version} if schema else None,
        "sections": questionnaire_sections(schema, answers, reviews),
        "reviews": [
            {
                "reviewer": r.reviewer.get_username(),
                "round": r.round,
                "decision": r.get_decision_display() if r.decision else "pending",
                "decided_at": r.decided_at,
                "comment": r.comment,
            }
            for r in reviews
        ],
        "limitations": limitations(schema, answers, document),
        "recommendations": recommendations(reviews, schema),
        "test_data": test_data(built, viewer),
        "manifest": built,
        "manifest_rows": manifest_rows(built),
    }


def pdf(html: str) -> bytes:
    """The report page's HTML as PDF. WeasyPrint may fetch only ``data:`` URIs (the inline plots): never a
    file of the server or a URL a team's answer could name."""
    import weasyprint  # noqa: PLC0415 - heavy (Pango via cffi); only the PDF route loads it

    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"}, allow_redirects=False)
    return weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
