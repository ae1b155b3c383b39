"""Auditors' reviews of submitted answers: start, rate questions, decide.

The states (``AnswerSet.State``): submitted → under_review when an auditor starts round 1 → approved or
rejected by that auditor's decision. When a second review is required (asked for when round 1 starts),
round 1's decision is recorded but not final: a different auditor starts round 2 and its decision is.
A decided review is immutable. Every step appends to the evidence trail.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from assay.server.submissions.models import Submission

from ..models import AnswerSet, Review
from . import trail
from .access import AuditRefusal, may_review, require, require_visible
from .answers import schema_of

REVIEW_MESSAGE = "Only the challenge's auditors review answers, and never their own team's."
MAX_COMMENT = 4000
RATINGS = range(1, 6)


def reviews_of(user, submission: Submission) -> list[Review]:
    """Every review round of the submission's answers (for the team, hosts and auditors)."""
    require_visible(user, submission)
    return list(Review.objects.filter(answer_set__submission=submission).select_related("reviewer").order_by("round"))


def _locked_set(submission: Submission) -> AnswerSet:
    answer_set = (
        AnswerSet.objects.select_for_update().select_related("questionnaire").filter(submission=submission).first()
    )
    if answer_set is None:
        raise AuditRefusal("not_submitted", "The team has not answered the questionnaire yet.", 409)
    return answer_set


def start_review(actor, submission: Submission, *, second_review_required: Any = False) -> Review:
    """Start the next review round: round 1 on submitted answers, round 2 (another auditor) when required."""
    require(may_review, actor, submission, REVIEW_MESSAGE)
    if not isinstance(second_review_required, bool):
        raise AuditRefusal("invalid", "second_review_required is true or false.", 400)
    if submission.status != Submission.Status.FINISHED:
        raise AuditRefusal(
            "not_evaluated", f"The submission is {submission.get_status_display().lower()}; review a finished one.", 409
        )
    try:
        with transaction.atomic():
            answer_set = _locked_set(submission)
            review = _next_round(actor, answer_set, second_review_required)
            trail.append(submission, "review_started", actor.username, {"round": review.round})
    except IntegrityError:  # the same round started a moment ago by another auditor
        raise AuditRefusal("conflict", "Another auditor started this review round a moment ago.", 409) from None
    return review


def _next_round(actor, answer_set: AnswerSet, second_review_required: bool) -> Review:
    state = answer_set.state
    if state == AnswerSet.State.DRAFT:
        raise AuditRefusal("not_submitted", "The team has not submitted its answers for review yet.", 409)
    if state in (AnswerSet.State.APPROVED, AnswerSet.State.REJECTED):
        raise AuditRefusal("decided", f"The review is over: the answers were {state}.", 409)
    if state == AnswerSet.State.SUBMITTED:
        answer_set.state = AnswerSet.State.UNDER_REVIEW
        answer_set.second_review_required = second_review_required
        answer_set.save(update_fields=["state", "second_review_required", "updated_at"])
        return Review.objects.create(answer_set=answer_set, reviewer=actor, round=1)
    rounds = {r.round: r for r in answer_set.reviews.all()}
    first = rounds.get(1)
    if not answer_set.second_review_required or 2 in rounds or first is None or not first.decision:
        who = rounds[max(rounds)].reviewer.username if rounds else "another auditor"
        raise AuditRefusal("under_review", f"The answers are already under review by {who}.", 409)
    if first.reviewer_id == actor.pk:
        raise AuditRefusal(
            "same_reviewer", "The second review must be done by a different auditor than the first.", 409
        )
    return Review.objects.create(answer_set=answer_set, reviewer=actor, round=2)


def _own_open_review(actor, review: Review | None, round_: int) -> Review:
    if review is None:
        raise AuditRefusal("not_found", f"There is no review round {round_} of these answers.", 404)
    if review.reviewer_id != actor.pk:
        raise AuditRefusal(
            "forbidden", f"Review round {round_} is {review.reviewer.username}'s; only they rate and decide it.", 403
        )
    if review.decision:
        raise AuditRefusal(
            "decided", f"Review round {round_} was decided ({review.decision}); it can no longer change.", 409
        )
    return review


def require_own_open_review(actor, submission: Submission, round_: int) -> Review:
    """The actor's undecided review round ``round_`` (404 none, 403 someone else's, 409 decided): the faces ask
    it before reading what is rated or decided."""
    require(may_review, actor, submission, REVIEW_MESSAGE)
    found = Review.objects.select_related("reviewer").filter(answer_set__submission=submission, round=round_).first()
    return _own_open_review(actor, found, round_)


def _locked_review(actor, submission: Submission, round_: int) -> Review:
    review = (
        Review.objects.select_for_update()
        .select_related("answer_set__questionnaire", "reviewer")
        .filter(answer_set__submission=submission, round=round_)
        .first()
    )
    return _own_open_review(actor, review, round_)


def _comment(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AuditRefusal("invalid", f"{where} is text.", 400)
    if len(value) > MAX_COMMENT or "\x00" in value:
        raise AuditRefusal("invalid", f"{where} is at most {MAX_COMMENT} characters of text.", 400)
    return value.strip()


def _ratings_problems(known: set[str], ratings: Any) -> list[str]:
    if not isinstance(ratings, dict):
        return ["ratings must be a mapping of question id to {rating, comment}"]
    problems = []
    for qid, given in ratings.items():
        if qid not in known:
            problems.append(f"{str(qid)[:80]!r} is not a question of this questionnaire")
        elif not isinstance(given, dict) or set(given) - {"rating", "comment"}:
            problems.append(f"question {qid!r}: give {{rating, comment}} and nothing else")
        elif not _is_rating(given.get("rating")):
            problems.append(f"question {qid!r}: the rating is a whole number from 1 to 5")
        elif not isinstance(given.get("comment", ""), str) or len(given.get("comment", "")) > MAX_COMMENT:
            problems.append(f"question {qid!r}: the comment is text of at most {MAX_COMMENT} characters")
    return problems


def _is_rating(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in RATINGS


def rate(actor, submission: Submission, round_: int, ratings: Any, comment: Any = None) -> Review:
    """Add or replace per-question ratings ({question id: {rating: 1-5, comment}}) of the actor's open round;
    ``comment`` (if given) replaces the review's overall comment."""
    require(may_review, actor, submission, REVIEW_MESSAGE)
    with transaction.atomic():
        review = _locked_review(actor, submission, round_)
        known = {q.id for q in schema_of(review.answer_set.questionnaire).questions()}
        problems = _ratings_problems(known, ratings)
        if problems:
            raise AuditRefusal("invalid", f"The ratings have {len(problems)} problem(s): {problems[0]}", 400, problems)
        review.ratings = {
            **review.ratings,
            **{
                qid: {"rating": given["rating"], "comment": given.get("comment", "").strip()}
                for qid, given in ratings.items()
            },
        }
        if comment is not None:
            review.comment = _comment(comment, "The review's comment")
        review.save(update_fields=["ratings", "comment"])
        trail.append(submission, "reviewed", actor.username, {"round": round_, "rated": sorted(ratings)[:50]})
    return review


def decide(actor, submission: Submission, round_: int, decision: Any, comment: Any = None) -> Review:
    """Approve or reject in the actor's open round (a rejection says why). Final unless it is round 1 of
    answers that need a second review."""
    require(may_review, actor, submission, REVIEW_MESSAGE)
    if decision not in Review.Decision.values:
        raise AuditRefusal("invalid", "The decision is 'approve' or 'reject'.", 400)
    text = _comment(comment, "The decision's comment")
    if decision == Review.Decision.REJECT and not text:
        raise AuditRefusal("invalid", "A rejection needs a comment saying why.", 400)
    with transaction.atomic():
        review = _locked_review(actor, submission, round_)
        answer_set = AnswerSet.objects.select_for_update().get(pk=review.answer_set_id)
        review.decision = decision
        review.comment = text or review.comment
        review.decided_at = timezone.now()
        review.save(update_fields=["decision", "comment", "decided_at"])
        final = review.round == 2 or not answer_set.second_review_required
        payload = {"round": review.round, "decision": decision, "final": final}
        if final:
            answer_set.state = (
                AnswerSet.State.APPROVED if decision == Review.Decision.APPROVE else AnswerSet.State.REJECTED
            )
            answer_set.save(update_fields=["state", "updated_at"])
            kind = "approved" if decision == Review.Decision.APPROVE else "rejected"
            trail.append(submission, kind, actor.username, {**payload, "comment": text[:1000]})
        else:
            trail.append(submission, "reviewed", actor.username, payload)
    return review
