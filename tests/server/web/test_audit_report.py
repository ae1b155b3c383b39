"""The audit report: what ``report_context`` gathers from a real summary, answers and review; the plots
(deterministic SVG and PNG); the page; and the PDF, read back as text."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from assay.server.audits.services import answers, plots, report
from assay.server.submissions.models import Submission

from .audit_world import SCHEMA, approved, client_for, released, summarise_into

pytestmark = pytest.mark.django_db


def context_of(sub, fmt: str = "svg") -> dict:
    return report.report_context(Submission.objects.get(pk=sub.pk), fmt=fmt)


def test_the_context_holds_every_part_of_the_report(audited):
    approved(audited)
    context = context_of(audited.sub_a)
    document = audited.sub_a.audit_summary.document
    auroc = document["headline"]["auroc"]
    row = next(f for f in context["headline"] if f["metric"] == "auroc")
    assert row == {
        "metric": "auroc",
        "name": "AUROC",
        "value": f"{auroc['value']:.3f}",
        "interval": f"{auroc['low']:.3f}–{auroc['high']:.3f}",
        "n": 80,
        "reason": "",
    }
    order = list(report.METRIC_NAMES)[:9]  # the binary metrics, in reading order
    assert [f["metric"] for f in context["headline"]] == order and set(order) == set(document["headline"])
    # the test set: 80 cases, every third one positive; sex is the subgroup attribute
    assert context["test_set"]["n"] == 80
    assert [(c["label"], c["n"]) for c in context["test_set"]["classes"]] == [
        ("negative (0)", 53),
        ("positive (1)", 27),
    ]
    assert context["test_set"]["subgroups"] == ["sex"]
    assert context["bootstrap"] == {"resamples": 50, "seed": 20261202, "level": 0.95}
    # the subgroup table: a row per group; "X" (3 cases) is suppressed and said to be
    (table,) = context["subgroups"]
    assert table["attribute"] == "sex" and table["suppressed"] == ["X"]
    first = table["parts"][0]
    assert [(r["group"], r["n"], r["suppressed"]) for r in first["rows"]] == [
        ("F", 39, False),
        ("M", 38, False),
        ("X", 3, True),
    ]
    assert sum(len(part["metrics"]) for part in table["parts"]) == len(document["headline"])
    female = document["subgroups"]["attributes"][0]["rows"][0]
    metric = "sensitivity"  # the first in reading order
    assert first["rows"][0]["cells"][0]["value"] == f"{female['figures'][metric]['value']:.3f}"
    assert first["rows"][0]["cells"][0]["gap"] == f"{female['gap'][metric]:+.3f}".replace("-", "−")
    worst = document["subgroups"]["attributes"][0]["worst"][metric]
    assert first["worst"][0] == {
        "group": worst["group"],
        "value": f"{worst['value']:.3f}",
        "ratio": report.number(worst["ratio"]),
    }
    # calibration figures, intended use from the answers, ratings beside the answers
    assert [f["metric"] for f in context["calibration"]] == ["brier", "log_loss", "ece", "slope", "intercept"]
    assert context["intended_use"][0] == {
        "heading": "Medical purpose",
        "answer": "Grading retinal photographs.",
        "stated": True,
        "question": "What is the model for?",
    }
    assert context["intended_use"][3]["answer"] == "high"  # the questionnaire's risk_tier
    assert [item["answer"] for item in context["intended_use"][1:3]] == ["not stated", "not stated"]
    (section,) = context["sections"]
    question = section["questions"][0]
    assert (question["text"], question["answer"]) == ("What is the model for?", "Grading retinal photographs.")
    assert question["ratings"] == [{"reviewer": "auditor1", "round": 1, "rating": 4, "comment": "Clear purpose."}]
    # limitations: the team's own words and the suppressed group; recommendations: the reviewer's
    assert "Known limitation: few cases over 80." not in context["limitations"]  # 'notes' is no limitations question
    assert any("X had fewer than 10 cases" in item for item in context["limitations"])
    assert {"by": "auditor1 (round 1)", "about": "Risk tier?", "text": "Justify the tier."} in context[
        "recommendations"
    ]
    assert {"by": "auditor1 (round 1)", "about": "Overall", "text": "Sound overall."} in context["recommendations"]
    assert set(context["plots"]) == {"roc", "reliability"}
    assert context["release"]["state"] == "unreleased"


def test_an_ordinal_summary_gives_a_confusion_matrix_and_class_balance(audit):
    settings = {"task": "ordinal", "grades": [0, 1, 2], "referable_from": 1, "bootstrap": {"resamples": 20, "seed": 1}}
    rows = [
        {"case_id": f"c{i}", "reference": i % 3, "prediction": (i % 3 if i % 4 else (i + 1) % 3)} for i in range(30)
    ]
    rows[0]["prediction"] = None  # ungraded: counted in its reference class
    summarise_into(audit.sub_a, settings, rows)
    context = context_of(audit.sub_a)
    assert [(c["label"], c["n"]) for c in context["test_set"]["classes"]] == [("0", 10), ("1", 10), ("2", 10)]
    assert set(context["plots"]) == {"confusion"}
    assert "Quadratic weighted kappa (QWK)" in [f["name"] for f in context["headline"]]


def test_without_a_summary_or_answers_the_report_says_so(audit):
    context = context_of(audit.sub_a)
    assert (context["headline"], context["subgroups"], context["plots"], context["sections"]) == ([], [], {}, [])
    assert [item["answer"] for item in context["intended_use"]] == ["not stated"] * 4
    page = client_for(audit.host).get(f"/submissions/{audit.sub_a.pk}/audit/report").content.decode()
    assert "No audit figures yet" in page and "The team has not answered the questionnaire" in page


def test_a_purpose_question_that_asks_for_patients_and_users_covers_them(audit):
    from assay.bundle.questionnaire import template
    from assay.server.audits.models import Questionnaire

    schema = template("fg-ai4h-v1")
    Questionnaire.objects.create(challenge=audit.challenge, version="2.0", schema=schema.as_json(), sha256="3" * 64)
    answers.save_draft(
        audit.alice,
        audit.sub_a,
        {"intended_use": "Screening adults.", "output_significance": "Drives clinical management"},
    )
    shown = {item["heading"]: item["answer"] for item in context_of(audit.sub_a)["intended_use"]}
    assert shown == {
        "Medical purpose": "Screening adults.",
        "Target population": "see the medical purpose",
        "Intended user": "see the medical purpose",
        "Risk tier": "Drives clinical management",
    }


def test_a_questionnaire_without_those_questions_leaves_them_not_stated(audit):
    from assay.server.audits.models import Questionnaire

    purpose_only = {
        **SCHEMA,
        "version": "3.0",
        "sections": [{**SCHEMA["sections"][0], "questions": [SCHEMA["sections"][0]["questions"][0]]}],
    }
    Questionnaire.objects.create(challenge=audit.challenge, version="3.0", schema=purpose_only, sha256="4" * 64)
    answers.save_draft(audit.alice, audit.sub_a, {"intended_use": "Screening."})
    shown = [item["answer"] for item in context_of(audit.sub_a)["intended_use"]]
    assert shown == ["Screening.", "not stated", "not stated", "not stated"]


def test_plots_are_deterministic_svg_and_png(audited):
    document = audited.sub_a.audit_summary.document
    svg, again = plots.plots(document, "svg"), plots.plots(document, "svg")
    assert svg == again and svg["roc"].startswith("<svg") and "<dc:date>" not in svg["roc"]
    assert "AUROC" in svg["roc"]  # text stays text (svg.fonttype none)
    png = plots.plots(document, "png")
    assert png == plots.plots(document, "png") and png["roc"].startswith(b"\x89PNG")


def test_hostile_labels_are_text_in_the_plots():
    """Labels come from the host's bundle: markup is escaped in the inline SVG and "$" is no mathtext."""
    labels = ["<script>alert(1)</script>", r"$\frac{$", "a&b"]
    matrix = {"labels": labels, "matrix": [[1, 0, 0], [0, 2, 0], [0, 0, 3]]}
    svg = plots.confusion(matrix)
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in svg and "a&amp;b" in svg
    assert r"$\frac{$" in svg
    assert plots.confusion(matrix, "png").startswith(b"\x89PNG")


def test_the_report_page_shows_figures_plots_subgroups_and_ratings(audited):
    approved(audited)
    page = client_for(audited.host).get(f"/submissions/{audited.sub_a.pk}/audit/report").content.decode()
    auroc = audited.sub_a.audit_summary.document["headline"]["auroc"]
    assert f"{auroc['value']:.3f}" in page and f"{auroc['low']:.3f}–{auroc['high']:.3f}" in page
    assert page.count("<svg") == 2  # ROC and reliability, inline
    assert 'data-attribute="sex"' in page and "suppressed: fewer than 10 cases" in page
    assert "4/5" in page and "Clear purpose." in page and "Justify the tier." in page
    assert f'href="/submissions/{audited.sub_a.pk}/audit/report.pdf"' in page
    assert "Not released" in page


def test_the_pdf_reads_back_with_metrics_subgroups_and_ratings(audited):
    released(audited)
    response = client_for(audited.alice).get(f"/submissions/{audited.sub_a.pk}/audit/report.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="audit-report-submission-{audited.sub_a.pk}.pdf"'
    reader = PdfReader(io.BytesIO(response.content))
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    document = audited.sub_a.audit_summary.document
    for metric in ("sensitivity", "specificity", "auroc"):
        assert report.metric_name(metric) in text
        assert f"{document['headline'][metric]['value']:.3f}" in text
    assert "By sex" in text and "Worst group (ratio)" in text
    assert "suppressed: fewer than 10 cases" in text
    assert "What is the model for?" in text and "Grading retinal photographs." in text and "4/5" in text
    assert "Released" in text
    assert len(reader.pages) >= 2


def test_the_pdf_fetches_nothing_but_inline_images():
    """A URL in the HTML (as an answer could only name one as text, this guards the template itself) is
    never fetched: no local file is read into the PDF."""
    html = '<p>before</p><img src="file:///etc/hostname"><link rel="stylesheet" href="file:///etc/passwd"><p>after</p>'
    text = PdfReader(io.BytesIO(report.pdf(html))).pages[0].extract_text()
    assert "before" in text and "after" in text and "root:" not in text


def test_the_manifest_downloads_as_signed_json_that_verifies(audited, settings, tmp_path):
    import json

    from assay.evidence import signing
    from assay.evidence.manifest import sha256_of, verify_manifest

    key = signing.generate_key()
    (tmp_path / "key.pem").write_bytes(signing.private_pem(key))
    settings.AUDIT_SIGNING_KEY = str(tmp_path / "key.pem")
    released(audited)
    response = client_for(audited.alice).get(f"/submissions/{audited.sub_a.pk}/audit/manifest.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert (
        response["Content-Disposition"] == f'attachment; filename="audit-manifest-submission-{audited.sub_a.pk}.json"'
    )
    manifest = json.loads(response.content)
    document = audited.sub_a.audit_summary.document
    assert manifest["summary"] == {"sha256": sha256_of(document)}
    assert manifest["audit"]["bootstrap_seed"] == 20261202
    assert verify_manifest(manifest, public_key=key.public_key(), summary=document) == []
    manifest["audit"]["bootstrap_seed"] = 1
    assert verify_manifest(manifest, public_key=key.public_key()) != []  # one changed value breaks the signature
