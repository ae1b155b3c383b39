"""What the web pages tell people after an action: what happened, and what follows from it.

One place for these sentences, so the participant's and the host's pages say the same thing in the same
words (and not "Submission 2: baseline done")."""

from __future__ import annotations

from assay.server.submissions.models import Submission

# action -> what is now true of the submission (the subject is added by submission_done)
SUBMISSION_DONE = {
    "cancel": "is cancelled: it will not be evaluated.",
    "hide": "is hidden: it no longer counts on the leaderboard or shows in the lists.",
    "public": "is now shown on the public leaderboard.",
    "private": "is now off the public leaderboard; only your team and the hosts see it.",
    "resume": "is queued again and goes on from where its evaluation stopped.",
    "describe": "has its new method name and description; the leaderboards show them.",
    "flag": "is flagged: the leaderboard leaves it out until you unflag it.",
    "unflag": "is no longer flagged: the leaderboard counts it again.",
    "baseline": "is now a baseline: the leaderboard shows it to every reader as a reference result.",
    "unbaseline": "is no longer a baseline.",
    "verify": "is marked as verified by the hosts (a badge on the leaderboard).",
    "unverify": "is no longer marked as verified.",
}


def submission_name(sub: Submission, *, host: bool, mid_sentence: bool = False) -> str:
    """How a submission is named to its reader: a team's own numbering, the host's id plus the team."""
    word = "submission" if mid_sentence else "Submission"
    if host:
        return f"{word} {sub.pk} ({sub.participant_team.name} #{sub.submission_number})"
    return f"{word} #{sub.submission_number}"


def submission_done(action: str, before: Submission, after: Submission, *, host: bool) -> str:
    name = submission_name(before, host=host)
    if action in ("rerun", "rerun_copy"):
        if after.pk != before.pk:
            return (
                f"{name} is evaluated again as {submission_name(after, host=host)}; "
                "its status shows below and updates by itself."
            )
        return f"{name} is queued for evaluation again; its status shows below and updates by itself."
    return f"{name} {SUBMISSION_DONE.get(action, 'is updated.')}"


STARTED = (Submission.Status.RUNNING, Submission.Status.FINISHED, Submission.Status.FAILED,
           Submission.Status.PARTIALLY_EVALUATED)  # fmt: skip


def cancel_too_late(sub: Submission, *, host: bool) -> str | None:
    """The answer when a worker claimed the submission between the page and the click (else None)."""
    sub.refresh_from_db(fields=["status"])
    if sub.status not in STARTED:
        return None
    return (
        f"{submission_name(sub, host=host)} was not cancelled: it had already started "
        f"(it is now {sub.get_status_display().lower()}), so its evaluation runs to the end. "
        "Hide it afterwards if it should not count."
    )


def submission_queued(sub: Submission) -> str:
    """After a submit. Not "is queued": the note stays while the row below moves on (my submissions drops
    it once nothing waits)."""
    return (
        f"Submission #{sub.submission_number} to {sub.phase.name} was received ({sub.input_file_name or 'file'}). "
        "Its status below updates by itself."
    )


# --- audits ------------------------------------------------------------------------------------------

AUDIT_DECISION_CONSEQUENCE = {
    "approve": "Your ratings are saved with the decision and can no longer change. Unless a second review "
    "is required, the answers are approved and the hosts may release the audit results.",
    "reject": "Your ratings and comment are saved with the decision and can no longer change. Unless a second "
    "review is required, the answers are rejected; the team sees your comment.",
}


def audit_answers_done(submitted: bool, loaded: bool = False) -> str:
    if loaded:
        return "The file's answers are saved as your draft: check them below, then submit them for review."
    if submitted:
        return (
            "Your answers are submitted for review and can no longer change. "
            "The challenge's auditors rate them; their ratings and decision show on this page."
        )
    return "Your answers are saved as a draft. Change them as often as you like, then submit them for review."


def audit_review_started(round_: int) -> str:
    which = "The review" if round_ == 1 else "The second review"
    return f"{which} is started and yours: rate each answer below, then approve or reject."


def audit_review_done(action: str) -> str:
    return {
        "save": "Your ratings are saved; the review stays open until you approve or reject.",
        "approve": "You approved the answers. Unless a second review is required, the hosts may now release "
        "the audit results.",
        "reject": "You rejected the answers; the team sees your comment.",
    }[action]


def audit_release_done(action: str) -> str:
    if action == "release":
        return "The audit results are released: the team now reads the report, its PDF and the manifest."
    return "The release is retracted: the team no longer reads the results, and is shown your reason."


def auditor_added(username: str, challenge: str) -> str:
    return f"{username} now audits {challenge}: they review the teams' answers from their Audits page."


def auditor_removed(username: str) -> str:
    return f"{username} no longer audits this challenge; the reviews they wrote stay."


def saved_changes(what: str, form, changed: list[str]) -> str:
    """What a settings save changed, in the form's own labels (not field names)."""
    if not changed:
        return f"{what}: nothing changed (every value was already as submitted)."
    labels = [str(form.fields[n].label or n.replace("_", " ").capitalize()) if n in form.fields else n for n in changed]
    return f"{what} saved; changed: {', '.join(labels)}."
