"""After submitting: cancel, re-run, resume, hide, publish, host marks — and who may do each."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from assay.server.submissions.models import Submission
from assay.server.submissions.services import lifecycle
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.queue import claim_next
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def sub(team, participant, demo_challenge) -> Submission:
    phase = demo_challenge.phases.get(codename="dev")
    return submit(participant, phase, upload(), "p.json", SubmissionFields())


@pytest.fixture
def stranger(django_user_model):
    return django_user_model.objects.create_user("mallory", "m@evil.example", "pw")


def code_of(fn, *args, **kwargs) -> str:
    with pytest.raises(SubmissionError) as err:
        fn(*args, **kwargs)
    return err.value.code


def test_owner_cancels_a_queued_submission_but_not_a_running_one(sub, participant):
    Submission.objects.filter(pk=sub.pk).update(status="running")
    assert code_of(lifecycle.cancel, participant, sub) == "bad_state"
    sub.phase.challenge.allow_cancel_running_submissions = True
    sub.phase.challenge.save()
    assert lifecycle.cancel(participant, sub).status == "cancelled"


def test_strangers_see_nothing(sub, stranger):
    for action in (lifecycle.cancel, lifecycle.hide, lifecycle.rerun):
        assert code_of(action, stranger, sub) == "not_found"
    assert code_of(lifecycle.set_public, stranger, sub, True) == "not_found"
    assert code_of(lifecycle.mark, stranger, sub, baseline=True) == "forbidden"


def test_host_cancel_needs_the_challenge_option(sub, host):
    assert code_of(lifecycle.cancel, host, sub) == "forbidden"
    sub.phase.challenge.allow_host_cancel_submissions = True
    sub.phase.challenge.save()
    assert lifecycle.cancel(host, sub).status == "cancelled"


def test_a_copy_on_request_or_by_participants_cancels_the_original(sub, host, participant):
    assert code_of(lifecycle.rerun, participant, sub) == "forbidden"
    clone = lifecycle.rerun(host, sub, as_new=True)
    sub.refresh_from_db()
    assert sub.status == "cancelled" and clone.status == "submitted" and clone.pk != sub.pk
    assert clone.submission_number == sub.submission_number + 1 and clone.rerun_resumed_at
    assert clone.input_file_sha256 == sub.input_file_sha256 and clone.attempt == 0
    sub.phase.challenge.allow_participants_resubmissions = True
    sub.phase.challenge.save()
    again = lifecycle.rerun(participant, clone)  # a participant's re-run is always a copy (limits apply)
    assert again.pk != clone.pk and again.status == "submitted"


def _board_scores(sub) -> list:
    from django.contrib.auth.models import AnonymousUser

    from assay.server.leaderboards.services.ranking import leaderboard

    ps = sub.phase.phase_splits.get(dataset_split__codename="public")
    return [row["scores"]["Accuracy"] for row in leaderboard(AnonymousUser(), ps).rows]


def test_a_hosts_rerun_evaluates_the_same_submission_again(sub, host):
    from tests.factories import finish

    done = finish(sub)
    assert done.status == "finished" and done.output and _board_scores(sub) == [0.9]
    first_claim = done.attempt
    again = lifecycle.rerun(host, done)
    assert again.pk == sub.pk and again.status == "submitted" and again.output is None
    assert again.submission_number == sub.submission_number and again.attempt == first_claim
    assert not again.stdout_file and again.completed_at is None and again.rerun_resumed_at
    assert Submission.objects.count() == 1  # no copy in the team's list
    (earlier,) = again.attempts.all()
    assert (earlier.number, earlier.status, earlier.rerun_by) == (1, "finished", host)
    assert earlier.output == done.output and earlier.completed_at == done.completed_at
    assert code_of(lifecycle.rerun, host, again) == "bad_state"  # waiting already: nothing to re-run yet
    assert _board_scores(sub) == []  # the earlier result left the leaderboard while it is evaluated again
    finished = finish(again, {"result": [{"public": {"Accuracy": 0.5, "F1": 0.5}}]})
    assert finished.status == "finished" and finished.attempt == first_claim + 1
    assert _board_scores(sub) == [0.5]  # the new result, not the earlier 0.9
    lifecycle.rerun(host, finished)
    assert [a.number for a in finished.attempts.all()] == [1, 2]


def test_an_in_place_rerun_keeps_the_earlier_evaluations_files_on_its_attempt(sub, host, media):
    """A host auditing a re-run still has the earlier logs and result documents: the attempt names them."""
    from django.core.files.storage import default_storage

    from tests.factories import finish

    done = finish(sub)
    names = {field: getattr(done, field).name for field in lifecycle.EVALUATION_FILES if getattr(done, field).name}
    assert {"stdout_file", "stderr_file", "submission_result_file"} <= set(names)
    again = lifecycle.rerun(host, done)
    (earlier,) = again.attempts.all()
    assert {field: getattr(earlier, field).name for field in names} == names
    assert all(default_storage.exists(name) for name in names.values())
    finished = finish(again, {"result": [{"public": {"Accuracy": 0.5, "F1": 0.5}}]})
    earlier.refresh_from_db()
    assert {field: getattr(earlier, field).name for field in names} == names  # the new evaluation wrote its own
    assert all(default_storage.exists(name) for name in names.values())
    assert finished.stdout_file.name and finished.stdout_file.name not in names.values()


def test_resume_only_failed_remote_submissions(sub, host):
    Submission.objects.filter(pk=sub.pk).update(status="failed")
    assert code_of(lifecycle.resume, host, sub) == "forbidden"
    challenge = sub.phase.challenge
    challenge.remote_evaluation = challenge.allow_resuming_submissions = True
    challenge.save()
    assert lifecycle.resume(host, sub).status == "resuming"
    assert code_of(lifecycle.resume, host, sub) == "bad_state"


def test_hide_makes_private_and_blocks_rerun(sub, participant, host):
    hidden = lifecycle.hide(participant, sub)
    assert hidden.ignore_submission and not hidden.is_public
    assert code_of(lifecycle.rerun, host, sub) == "bad_state"
    assert code_of(lifecycle.set_public, participant, sub, True) == "bad_state"


def test_visibility_rules(sub, participant, host):
    # the demo dev phase has a public leaderboard and public-by-default submissions: participants can't hide
    assert code_of(lifecycle.set_public, participant, sub, False) == "forbidden"
    assert lifecycle.set_public(host, sub, False).is_public is False
    phase = sub.phase
    phase.is_submission_public = False
    phase.save()
    assert lifecycle.set_public(participant, sub, True).when_made_public is not None
    phase.leaderboard_public = False
    phase.save()
    assert code_of(lifecycle.set_public, participant, sub, True) == "forbidden"


def test_host_marks(sub, host, participant):
    assert code_of(lifecycle.mark, participant, sub, baseline=True) == "forbidden"
    marked = lifecycle.mark(host, sub, baseline=True, flagged=True, verified=True)
    assert marked.is_baseline and marked.is_flagged and marked.is_verified_by_host


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_share_a_job(team, participant, demo_challenge, admin_user):
    phase = demo_challenge.phases.get(codename="dev")
    phase.max_concurrent_submissions_allowed = 100
    phase.save()
    for i in range(30):
        submit(participant, phase, upload(b'{"i": %d}' % i), "p.json", SubmissionFields())
    token, _ = create_worker_token(admin_user, "pool")

    def drain(worker: int) -> list[int]:
        got = []
        try:
            while (sub := claim_next(token, f"w{worker}")) is not None:
                got.append(sub.pk)
        finally:
            connection.close()
        return got

    with ThreadPoolExecutor(max_workers=6) as pool:
        claimed = [pk for batch in pool.map(drain, range(6)) for pk in batch]
    assert len(claimed) == 30 and len(set(claimed)) == 30
    assert set(Submission.objects.values_list("status", flat=True)) == {"running"}


def test_api_rerun_in_place_or_as_a_new_submission(sub, host):
    from tests.factories import client_for, finish

    finish(sub)
    api = client_for(host)
    again = api.post(f"/api/v1/submissions/{sub.pk}/rerun", format="json")
    assert again.status_code == 200 and again.json()["id"] == sub.pk and again.json()["status"] == "submitted"
    finish(Submission.objects.get(pk=sub.pk))
    assert again.json()["rerun_in_place"] is True and again.json()["evaluation"] == 2
    copy = api.post(f"/api/v1/submissions/{sub.pk}/rerun", {"as_new_submission": True}, format="json")
    assert copy.status_code == 200 and copy.json()["id"] != sub.pk
    assert copy.json()["rerun_in_place"] is False and copy.json()["evaluation"] == 1
    assert Submission.objects.get(pk=sub.pk).status == "cancelled"
    bad = api.post(f"/api/v1/submissions/{copy.json()['id']}/rerun", {"as_new_submission": "maybe"}, format="json")
    assert bad.status_code == 400
