"""Submitting: every EvalAI submit-time check, meta attributes, visibility, and race-free limits."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assay.server.challenges.models import ChallengePhase, Participation
from assay.server.submissions.models import Submission
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.submit import SubmissionFields, remaining, submit
from tests.factories import stored_files, upload


def submission_files(media) -> set[str]:
    return {n for n in stored_files(media) if n.startswith("submissions/")}


pytestmark = pytest.mark.django_db


def dev(challenge) -> ChallengePhase:
    return challenge.phases.get(codename="dev")


def do_submit(user, phase, content=b"{}", name="p.json", **fields):
    return submit(user, phase, upload(content, name), name, SubmissionFields(**fields))


def refused(code, user, phase, **kw) -> SubmissionError:
    with pytest.raises(SubmissionError) as err:
        do_submit(user, phase, **kw)
    assert err.value.code == code, err.value.message
    return err.value


def test_submit_stores_file_with_hash_and_queues(team, participant, media):
    sub = do_submit(participant, dev(team.participations.get().challenge), content=b'{"a": 1}', method_name="m")
    assert sub.status == "submitted" and sub.submission_number == 1
    assert sub.queue_name == "default" and sub.participant_team == team
    assert (media / sub.input_file.name).read_bytes() == b'{"a": 1}'
    assert len(sub.input_file_sha256) == 64 and sub.input_file_size == 8
    assert sub.is_public  # the dev phase's is_submission_public
    assert do_submit(participant, sub.phase).submission_number == 2


def test_a_participants_submit_takes_three_statements_and_a_lock(team, participant, demo_challenge):
    """Issue 13: the team's registration, one count of every limit (and the next number), the insert;
    on PostgreSQL also the registration's lock (SQLite's IMMEDIATE transaction is the lock) and the
    NOTIFY that wakes other processes' waiting claims."""
    phase = dev(demo_challenge)
    do_submit(participant, phase)
    with CaptureQueriesContext(connection) as ctx:
        assert do_submit(participant, phase).submission_number == 2
    sql = [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]
    kinds = [q.split()[0] for q in sql]
    if connection.vendor == "postgresql":  # registration, its lock, counts, insert, pg_notify
        assert kinds == ["SELECT", "SELECT", "SELECT", "INSERT", "SELECT"], sql
    else:
        assert kinds == ["SELECT", "SELECT", "INSERT"], sql


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        (lambda c, p: setattr(c, "end_date", timezone.now() - dt.timedelta(days=1)), "challenge_not_active", 406),
        (lambda c, p: setattr(p, "start_date", timezone.now() + dt.timedelta(days=1)), "phase_not_active", 406),
        (lambda c, p: setattr(c, "is_submission_paused", True), "submissions_paused", 406),
        (lambda c, p: setattr(p, "is_submission_paused", True), "submissions_paused", 406),
        (lambda c, p: setattr(p, "is_public", False), "phase_not_public", 403),
        (lambda c, p: setattr(p, "allowed_email_ids", ["bob@x.org"]), "email_not_allowed", 403),
        (lambda c, p: setattr(c, "banned_email_ids", ["ALICE@uni.example"]), "team_banned", 403),
    ],
)
def test_gate_checks(team, participant, media, change, code, status):
    challenge = team.participations.get().challenge
    phase = dev(challenge)
    change(challenge, phase)
    challenge.save()
    phase.save()
    err = refused(code, participant, phase)
    assert err.status == status
    assert Submission.objects.count() == 0 and submission_files(media) == set()


def test_not_registered_and_not_approved(team, participant, demo_challenge, django_user_model):
    outsider = django_user_model.objects.create_user("bob", "bob@x.org", "pw")
    refused("not_participating", outsider, dev(demo_challenge))
    Participation.objects.filter(team=team).update(status="pending")
    refused("team_not_approved", participant, dev(demo_challenge))


def test_hosts_may_test_submit_to_hidden_or_future_phases(demo_challenge, host):
    phase = dev(demo_challenge)
    phase.is_public = False
    phase.start_date = timezone.now() + dt.timedelta(days=3)
    phase.save()
    sub = do_submit(host, phase)
    assert sub.participant_team.name.startswith("Hosts of")


def test_file_type_is_enforced_on_the_server(team, participant, demo_challenge, media):
    refused("file_type_not_allowed", participant, dev(demo_challenge), name="preds.csv")
    refused("file_type_not_allowed", participant, dev(demo_challenge), name="json")
    assert submission_files(media) == set()


def test_hostile_file_names_are_stored_safely(team, participant, demo_challenge, media):
    sub = do_submit(participant, dev(demo_challenge), name="../../etc/passwd.json")
    assert sub.input_file_name == "passwd.json"
    assert (media / sub.input_file.name).resolve().is_relative_to(media.resolve())


def test_concurrency_cap(team, participant, demo_challenge):
    phase = dev(demo_challenge)
    for _ in range(3):
        do_submit(participant, phase)
    err = refused("too_many_in_progress", participant, phase)
    assert err.status == 406


@pytest.mark.parametrize("count_failed", [False, True])
def test_daily_limit_excludes_failed_and_cancelled_unless_host_opts_in(team, participant, demo_challenge, count_failed):
    phase = dev(demo_challenge)
    phase.max_submissions_per_day = 2
    phase.max_concurrent_submissions_allowed = 10
    phase.count_failed_submissions = count_failed
    phase.save()
    a = do_submit(participant, phase)
    b = do_submit(participant, phase)
    refused("limit_day", participant, phase)
    Submission.objects.filter(pk=a.pk).update(status="failed")
    Submission.objects.filter(pk=b.pk).update(status="cancelled")
    if count_failed:
        do_submit(participant, phase)  # the cancelled one frees a slot, the failed one does not
        refused("limit_day", participant, phase)
    else:
        do_submit(participant, phase)
        do_submit(participant, phase)
        refused("limit_day", participant, phase)
    assert remaining(phase, team)["remaining_submissions_today_count"] == 0


def test_total_and_monthly_limits(team, participant, demo_challenge):
    phase = dev(demo_challenge)
    phase.max_concurrent_submissions_allowed = 10
    phase.max_submissions_per_month = 1
    phase.save()
    do_submit(participant, phase)
    refused("limit_month", participant, phase)
    phase.max_submissions_per_month = 10
    phase.max_submissions = 1
    phase.save()
    refused("limit_total", participant, phase)


def test_only_this_day_and_month_count_toward_their_limits(team, participant, demo_challenge):
    """The usage count takes today's and this month's start as values: older submissions fall out."""
    phase = dev(demo_challenge)
    phase.max_concurrent_submissions_allowed = 10
    phase.max_submissions_per_day = 1
    phase.max_submissions_per_month = 2
    phase.save()
    old = do_submit(participant, phase)
    Submission.objects.filter(pk=old.pk).update(submitted_at=timezone.now() - dt.timedelta(days=40))
    yesterday = do_submit(participant, phase)  # the 40-day-old one counts toward neither limit
    Submission.objects.filter(pk=yesterday.pk).update(submitted_at=timezone.now() - dt.timedelta(days=1))
    now = timezone.now()
    if now.day == 1:  # yesterday was last month
        do_submit(participant, phase)
        refused("limit_day", participant, phase)
    else:
        do_submit(participant, phase)  # yesterday's counts toward the month only
        refused("limit_month", participant, phase)
    usage = remaining(phase, team)
    assert usage["remaining_submissions_today_count"] == 0


def test_meta_attributes_are_validated_and_stored(team, participant, demo_challenge):
    phase = dev(demo_challenge)
    sub = do_submit(participant, phase, meta={"uses_modulo": "true"})
    assert sub.submission_metadata[0]["name"] == "uses_modulo" and sub.submission_metadata[0]["value"] is True
    refused("bad_meta_attribute", participant, phase, meta={"nope": 1})
    refused("bad_meta_attribute", participant, phase, meta={"uses_modulo": "maybe"})
    refused("bad_meta_attribute", participant, phase, meta="oops")
    # EvalAI CLI's list form
    sub = do_submit(participant, phase, meta=[{"name": "uses_modulo", "type": "boolean", "value": False}])
    assert sub.submission_metadata[0]["value"] is False


def test_private_leaderboard_forces_the_phase_default(team, participant, demo_challenge):
    phase = dev(demo_challenge)
    phase.leaderboard_public = False
    phase.is_submission_public = False
    phase.save()
    assert do_submit(participant, phase, is_public=True).is_public is False


def test_select_one_unpublishes_the_previous_public_submission(team, participant, demo_challenge):
    phase = dev(demo_challenge)
    phase.is_restricted_to_select_one_submission = True
    phase.save()
    first = do_submit(participant, phase, is_public=True)
    second = do_submit(participant, phase, is_public=True)
    first.refresh_from_db()
    assert second.is_public and not first.is_public


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_respect_the_daily_limit_exactly(team, participant, demo_challenge, media):
    phase = dev(demo_challenge)
    phase.max_submissions_per_day = 5
    phase.max_concurrent_submissions_allowed = 1000
    phase.save()

    def attempt(i: int) -> str:
        try:
            do_submit(participant, phase, content=b'{"n": %d}' % (i % 7))
            return "ok"
        except SubmissionError as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(200)))
    assert outcomes.count("ok") == 5, outcomes
    assert set(outcomes) == {"ok", "limit_day"}
    subs = Submission.objects.filter(phase=phase)
    assert subs.count() == 5
    assert sorted(subs.values_list("submission_number", flat=True)) == [1, 2, 3, 4, 5]
    # every stored file belongs to an accepted submission: refused submits left nothing behind
    assert submission_files(media) == {s.input_file.name for s in subs}


def test_select_one_takes_the_replaced_entry_off_the_public_leaderboard_at_once(team, participant, demo_challenge):
    from django.contrib.auth.models import AnonymousUser

    from assay.server.leaderboards.models import Standing
    from assay.server.leaderboards.services.ranking import leaderboard
    from tests.factories import finish

    phase = dev(demo_challenge)
    phase.is_restricted_to_select_one_submission = True
    phase.save()
    first = do_submit(participant, phase, is_public=True)
    finish(first)
    ps = phase.phase_splits.get(visibility=3)
    assert [r["submission"]["id"] for r in leaderboard(AnonymousUser(), ps).rows] == [first.pk]
    do_submit(participant, phase, is_public=True)  # not evaluated yet: the team shows nothing meanwhile
    assert leaderboard(AnonymousUser(), ps).rows == []
    public = Standing.objects.filter(phase_split=ps, audience=Standing.Audience.PUBLIC, submission=first)
    assert not public.exists()  # the materialised standings agree, not only the read-time filter
