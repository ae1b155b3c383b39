"""The audit pages: a submission's audit (the team answers, auditors review, hosts release), the audit report
as a page, a PDF and its manifest, the user's audits, and the hosts' auditors.

Thin: every question of who may do what goes to ``audits.services.access`` (directly or through the
workflow services, which ask it themselves); a refusal they raise becomes its page (404 for an audit the
user may not see, 403 for an act they may not do) through ``RefusalPages``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from assay.bundle.errors import BundleError
from assay.bundle.questionnaire import MAX_QUESTIONNAIRE_BYTES, load_answers
from assay.bundle.questionnaire import Questionnaire as QuestionnaireSchema
from assay.server.audits.models import AnswerSet
from assay.server.audits.services import access, answers, auditors, questionnaires, release, report, reviews, trail
from assay.server.audits.services.access import AuditRefusal
from assay.server.audits.services.overview import overview
from assay.server.audits.services.prefill import Start
from assay.server.submissions.models import Submission

from .. import wording
from .common import challenge_context, confirmation, hosted_or_404, refusal

#: Rows per page of the audit lists.
PAGE = 25
EDITABLE = (None, AnswerSet.State.DRAFT)


def _submission(submission_id: int) -> Submission:
    related = "phase__challenge__host_team", "participant_team"
    return get_object_or_404(Submission.objects.select_related(*related), pk=submission_id)


# --- the questionnaire form --------------------------------------------------------------------------------


def field_name(question_id: str) -> str:
    return f"q_{question_id}"


_INTEGER = re.compile(r"^[+-]?\d{1,16}$")


def answers_from_form(schema: QuestionnaireSchema, data) -> dict[str, Any]:
    """The answers a posted form gives ({question id: value}, unanswered left out). Values that do not
    parse (a number that is not one) are kept as typed, so the questionnaire's check names them."""
    out: dict[str, Any] = {}
    for q in schema.questions():
        name = field_name(q.id)
        if q.type == "multiple_choice":
            chosen = [v for v in data.getlist(name) if v]
            if chosen:
                out[q.id] = chosen
            continue
        raw = (data.get(name) or "").strip()
        if not raw:
            continue
        if q.type == "yes_no":
            out[q.id] = {"yes": True, "no": False}.get(raw, raw)
        elif q.type == "number":
            try:
                out[q.id] = int(raw) if _INTEGER.match(raw) else float(raw)
            except ValueError:
                out[q.id] = raw
        else:
            out[q.id] = raw
    return out


#: The largest answers file the page reads (a questionnaire's own limit).
MAX_ANSWERS_FILE = MAX_QUESTIONNAIRE_BYTES


def answers_from_file(upload) -> dict[str, Any]:
    """The answers of an uploaded answers file (YAML or JSON, ``{question id: value}``, as ``assay bundle
    check-answers`` reads it); a file that is missing, too large or unreadable is a 400 refusal naming why."""
    if upload is None:
        raise AuditRefusal("invalid", "Choose an answers file (YAML or JSON) to load.", 400)
    if upload.size > MAX_ANSWERS_FILE:
        raise AuditRefusal("invalid", f"An answers file is at most {MAX_ANSWERS_FILE // 1024} KiB.", 400)
    try:
        return load_answers(upload.read(), upload.name or "answers.yaml")
    except BundleError as exc:
        raise AuditRefusal("invalid", f"The answers file cannot be read: {exc}", 400) from None


def _form_sections(schema: QuestionnaireSchema | None, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The questionnaire as the form shows it: each question with its field name and current value."""
    if schema is None:
        return []
    sections = []
    for section in schema.sections:
        questions = []
        for q in section.questions:
            value = values.get(q.id)
            shown = {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value
            questions.append(
                {
                    "q": q,
                    "name": field_name(q.id),
                    "value": "" if shown is None else shown,
                    "chosen": value if isinstance(value, list) else [],
                }
            )
        sections.append({"section": section, "questions": questions})
    return sections


# --- the audit page ----------------------------------------------------------------------------------------


def _audit_context(request: HttpRequest, sub: Submission, posted: dict[str, Any] | None = None) -> dict[str, Any]:
    state = overview(request.user, sub)  # 404 refusal when the user may not see this audit
    answer_set = answers.answer_set_of(sub)
    questionnaire = answers.questionnaire_of(sub, answer_set)
    schema = answers.schema_of(questionnaire) if questionnaire else None
    # before the team saved any answers, its form starts from the prefill (for a model's submission)
    prefilled = answers.prefill_for(request.user, sub, answer_set) if posted is None else Start()
    values = posted if posted is not None else (answer_set.answers if answer_set else prefilled.answers)
    rounds = reviews.reviews_of(request.user, sub)
    own_open = next((r for r in rounds if r.reviewer_id == request.user.pk and not r.decision), None)
    may = state["may"]
    context = challenge_context(request, sub.phase.challenge, "audit")
    context.update(
        submission=sub,
        audit=state,
        answer_set=answer_set,
        prefilled_from=prefilled.sources,
        schema=schema,
        sections=_form_sections(schema, values),
        editable=may["answer"] and (answer_set.state if answer_set else None) in EDITABLE and schema is not None,
        answered=report.questionnaire_sections(schema, values, rounds),
        rounds=rounds,
        own_open=own_open,
        rating_values=_rating_values(own_open),
        may_start=may["review"] and _may_start(state, rounds, request.user),
        release=access.release_of(sub),
        team_name=wording.submission_name(sub, host=not access.is_submitter(request.user, sub)),
    )
    return context


def _may_start(state: dict[str, Any], rounds: list, user) -> bool:
    """Whether to offer 'Start review' (the service decides; this only hides a button that would be refused)."""
    if state["state"] == AnswerSet.State.SUBMITTED:
        return True
    first = next((r for r in rounds if r.round == 1), None)
    return (
        state["state"] == AnswerSet.State.UNDER_REVIEW
        and state["second_review_required"]
        and len(rounds) == 1
        and first is not None
        and bool(first.decision)
        and first.reviewer_id != user.pk
    )


def _rating_values(review) -> dict[str, dict[str, Any]]:
    return dict(review.ratings) if review is not None else {}


@login_required
@require_GET
def audit_page(request: HttpRequest, submission_id: int) -> HttpResponse:
    sub = _submission(submission_id)
    return render(request, "web/audit/audit.html", _audit_context(request, sub))


@login_required
@require_POST
def save_answers(request: HttpRequest, submission_id: int) -> HttpResponse:
    """Save the team's draft; with ``action=submit`` also submit it for review (immutable afterwards)."""
    sub = _submission(submission_id)
    access.require(access.may_answer, request.user, sub, answers.ANSWER_MESSAGE)
    questionnaire = questionnaires.current_questionnaire(sub.phase.challenge)
    if questionnaire is None:
        raise AuditRefusal("no_questionnaire", "This challenge has no questionnaire yet.", 409)
    action = request.POST.get("action")
    if action == "load":
        try:
            posted = answers_from_file(request.FILES.get("answers_file"))
        except AuditRefusal as exc:
            refusal(request, exc)
            return redirect("web:audit", submission_id=sub.pk)
    else:
        posted = answers_from_form(answers.schema_of(questionnaire), request.POST)
    submitting = action == "submit"
    try:
        answers.save_draft(request.user, sub, posted)
        if submitting:
            answers.submit_answers(request.user, sub)
    except AuditRefusal as exc:
        if exc.status != 400:
            refusal(request, exc)
            return redirect("web:audit", submission_id=sub.pk)
        context = _audit_context(request, sub, posted)
        context["problems"] = exc.problems or [exc.message]
        saved = (
            "Your answers were saved as a draft, but not submitted"
            if submitting and exc.code == "incomplete"
            else "Your answers were not saved"
        )
        messages.error(request, f"{saved}: see the problems below.")
        return render(request, "web/audit/audit.html", context, status=400)
    messages.success(request, wording.audit_answers_done(submitting, loaded=action == "load"))
    return redirect("web:audit", submission_id=sub.pk)


def _ratings_from_form(request: HttpRequest, schema: QuestionnaireSchema) -> tuple[dict[str, Any], list[str]]:
    """{question id: {rating, comment}} for every question given a rating; a comment without a rating is a
    problem (a rating says how good the answer is, the comment why)."""
    ratings, problems = {}, []
    for q in schema.questions():
        raw = (request.POST.get(f"rating_{q.id}") or "").strip()
        comment = (request.POST.get(f"comment_{q.id}") or "").strip()
        if not raw:
            if comment:
                problems.append(f"Question {q.id!r} has a comment but no rating: give it a rating from 1 to 5.")
            continue
        try:
            ratings[q.id] = {"rating": int(raw), "comment": comment}
        except ValueError:
            problems.append(f"Question {q.id!r}: the rating is a whole number from 1 to 5.")
    return ratings, problems


REVIEW_ACTIONS = ("start", "save", "approve", "reject")


@login_required
@require_POST
def review(request: HttpRequest, submission_id: int, action: str) -> HttpResponse:
    """An auditor starts a review round, saves ratings, or decides (asked to confirm: a decision is final)."""
    sub = _submission(submission_id)
    if action not in REVIEW_ACTIONS:
        raise Http404("no such action")
    access.require(access.may_review, request.user, sub, reviews.REVIEW_MESSAGE)
    back = reverse("web:audit", args=[sub.pk])
    name = wording.submission_name(sub, host=True, mid_sentence=True)
    if action == "start":
        try:
            started = reviews.start_review(
                request.user, sub, second_review_required=request.POST.get("second_review_required") == "on"
            )
            messages.success(request, wording.audit_review_started(started.round))
        except AuditRefusal as exc:
            refusal(request, exc)
        return redirect(back)
    if action in ("approve", "reject"):
        ask = confirmation(
            request,
            question=f"{action.capitalize()} the answers of {name}?",
            consequence=wording.AUDIT_DECISION_CONSEQUENCE[action],
            action=f"Yes, {action}",
            back=back,
        )
        if ask is not None:
            return ask
    try:
        round_ = int(request.POST.get("round", ""))
    except ValueError:
        messages.error(request, "The review round is missing; reload the page and try again.")
        return redirect(back)
    open_review = next((r for r in reviews.reviews_of(request.user, sub) if r.round == round_), None)
    if open_review is None:
        raise Http404("no such review round")
    schema = answers.schema_of(open_review.answer_set.questionnaire)
    ratings, problems = _ratings_from_form(request, schema)
    if problems:
        for problem in problems:
            messages.error(request, problem)
        return redirect(back)
    comment = request.POST.get("comment")
    try:
        if ratings or comment is not None:
            reviews.rate(request.user, sub, round_, ratings, comment)
        if action in ("approve", "reject"):
            reviews.decide(request.user, sub, round_, "approve" if action == "approve" else "reject", comment)
        messages.success(request, wording.audit_review_done(action))
    except AuditRefusal as exc:
        refusal(request, exc)
    return redirect(back)


@login_required
@require_POST
def release_action(request: HttpRequest, submission_id: int, action: str) -> HttpResponse:
    """Hosts release an approved audit, or retract a release with a reason (asked to confirm)."""
    sub = _submission(submission_id)
    if action not in ("release", "retract"):
        raise Http404("no such action")
    access.require(access.may_release, request.user, sub, release.RELEASE_MESSAGE)
    back = reverse("web:audit", args=[sub.pk])
    if action == "retract":
        if not request.POST.get("reason", "").strip():
            messages.error(request, "Say why the release is retracted: readers of the audit are shown the reason.")
            return redirect(back)
        name = wording.submission_name(sub, host=True, mid_sentence=True)
        ask = confirmation(
            request,
            question=f"Retract the release of the audit of {name}?",
            consequence="The team no longer reads its audit results; everyone who could is shown your reason. "
            "The release is kept on record, and cannot be made again for this submission.",
            action="Yes, retract",
            back=back,
        )
        if ask is not None:
            return ask
    try:
        if action == "release":
            release.release(request.user, sub)
        else:
            release.retract(request.user, sub, request.POST.get("reason", ""))
        messages.success(request, wording.audit_release_done(action))
    except AuditRefusal as exc:
        refusal(request, exc)
    return redirect(back)


# --- the report --------------------------------------------------------------------------------------------


def _readable(request: HttpRequest, submission_id: int) -> Submission:
    sub = _submission(submission_id)
    access.require_results(request.user, sub)
    return sub


def _report_html(request: HttpRequest, sub: Submission, *, pdf: bool) -> str:
    context = report.report_context(sub, fmt="png" if pdf else "svg", viewer=request.user)
    if pdf and context["test_data"] and context["test_data"]["url"]:  # a PDF's link leaves the site
        context["test_data"]["url"] = request.build_absolute_uri(context["test_data"]["url"])
    context["layout"] = "web/audit/print.html" if pdf else "web/base.html"
    return render_to_string("web/audit/report.html", context, request=None if pdf else request)


def _filename(sub: Submission, suffix: str) -> str:
    return f"audit-report-submission-{sub.pk}{suffix}"


@login_required
@require_GET
def report_page(request: HttpRequest, submission_id: int) -> HttpResponse:
    sub = _readable(request, submission_id)
    return HttpResponse(_report_html(request, sub, pdf=False))


@login_required
@require_GET
def report_pdf(request: HttpRequest, submission_id: int) -> HttpResponse:
    sub = _readable(request, submission_id)
    document = report.pdf(_report_html(request, sub, pdf=True))
    response = HttpResponse(document, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{_filename(sub, ".pdf")}"'
    return response


@login_required
@require_GET
def manifest_json(request: HttpRequest, submission_id: int) -> HttpResponse:
    sub = _readable(request, submission_id)
    built = report.manifest(sub)
    body = json.dumps(built, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="audit-manifest-submission-{sub.pk}.json"'
    return response


@login_required
@require_GET
def trail_json(request: HttpRequest, submission_id: int) -> HttpResponse:
    """The evidence trail, for ``assay audit verify manifest.json --trail trail.json``; read like the manifest."""
    sub = _readable(request, submission_id)
    body = json.dumps(trail.document(sub), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="audit-trail-submission-{sub.pk}.json"'
    return response


# --- lists and the hosts' auditors -------------------------------------------------------------------------


def _rows(subs) -> list[tuple[Submission, str, str]]:
    """Each submission with its answers' state and release state, as the lists print them."""
    out = []
    for sub in subs:
        answer_set = getattr(sub, "answers", None)  # a missing reverse one-to-one raises an AttributeError
        state = answer_set.get_state_display() if answer_set else "Not answered"
        given = access.release_of(sub)
        out.append((sub, state, given.get_state_display() if given else "Not released"))
    return out


def _audit_list(user):
    return (
        access.visible_audits(user)
        .select_related("phase__challenge", "participant_team", "answers", "release")
        .order_by("-submitted_at", "-pk")
    )


@login_required
@require_GET
def my_audits(request: HttpRequest) -> HttpResponse:
    """Every audit the user may see: their teams' submissions, and those of challenges they host or audit."""
    page = Paginator(_audit_list(request.user), PAGE).get_page(request.GET.get("page"))
    return render(request, "web/audit/list.html", {"page": page, "rows": _rows(page.object_list)})


@login_required
@require_GET
def host_audits(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    context = challenge_context(request, challenge, "host")
    context["host_tab"] = "audits"
    context["auditors"] = auditors.list_auditors(request.user, challenge)
    page = Paginator(_audit_list(request.user).filter(phase__challenge=challenge), PAGE).get_page(
        request.GET.get("page")
    )
    context.update(
        page=page, rows=_rows(page.object_list), audited=challenge.phases.filter(audit__isnull=False).exists()
    )
    return render(request, "web/audit/host.html", context)


@login_required
@require_POST
def host_add_auditor(request: HttpRequest, pk: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    try:
        added = auditors.add_auditor(request.user, challenge, request.POST.get("who", ""))
        messages.success(request, wording.auditor_added(added.user.get_username(), challenge.title))
    except AuditRefusal as exc:
        refusal(request, exc)
    return redirect("web:host-audits", pk=challenge.pk)


@login_required
@require_POST
def host_remove_auditor(request: HttpRequest, pk: int, user_id: int) -> HttpResponse:
    challenge = hosted_or_404(request, pk)
    entry = challenge.auditors.select_related("user").filter(user_id=user_id).first()
    if entry is None:
        raise Http404("no such auditor")
    ask = confirmation(
        request,
        question=f"Remove {entry.user.get_username()} from the auditors of {challenge.title}?",
        consequence="They can no longer start or decide reviews here; the reviews they wrote stay, with their name.",
        action="Yes, remove",
        back=reverse("web:host-audits", args=[challenge.pk]),
    )
    if ask is not None:
        return ask
    try:
        auditors.remove_auditor(request.user, challenge, user_id)
        messages.success(request, wording.auditor_removed(entry.user.get_username()))
    except AuditRefusal as exc:
        refusal(request, exc)
    return redirect("web:host-audits", pk=challenge.pk)
