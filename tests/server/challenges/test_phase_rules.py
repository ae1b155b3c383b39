"""A phase's rules are read once and kept briefly; a host's change counts at once in this process."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assay.server.challenges.models import ChallengePhase, Leaderboard
from assay.server.challenges.services import hosting, phase_rules

pytestmark = pytest.mark.django_db


def statements(call) -> int:
    with CaptureQueriesContext(connection) as ctx:
        call()
    return len(ctx.captured_queries)


def test_split_rules_are_read_once_and_forgotten_when_a_leaderboard_changes(demo_challenge):
    phase = demo_challenge.phases.get(codename="dev")
    phase_rules.forget()
    assert statements(lambda: phase_rules.split_rules(phase.pk)) == 1
    assert statements(lambda: phase_rules.split_rules(phase.pk)) == 0
    (rule,) = phase_rules.split_rules(phase.pk)
    assert (rule.codename, rule.labels) == ("public", ("Accuracy", "F1"))
    board = Leaderboard.objects.get(pk=rule_board(rule))
    board.schema = {**board.schema, "labels": ["Accuracy"]}
    board.save()
    assert phase_rules.split_rules(phase.pk)[0].labels == ("Accuracy",)


def rule_board(rule: phase_rules.SplitRule) -> int:
    from assay.server.challenges.models import ChallengePhaseSplit

    return ChallengePhaseSplit.objects.get(pk=rule.phase_split_id).leaderboard_id


def test_a_phase_comes_with_its_challenge_as_a_private_copy(demo_challenge):
    phase_id = demo_challenge.phases.get(codename="dev").pk
    first = phase_rules.phase_with_challenge(phase_id)
    assert statements(lambda: phase_rules.phase_with_challenge(phase_id).challenge.host_team.name) == 0
    second = phase_rules.phase_with_challenge(phase_id)
    assert first is not second and first.challenge is not second.challenge
    first.challenge.title = "changed in one request"
    assert phase_rules.phase_with_challenge(phase_id).challenge.title == demo_challenge.title
    assert phase_rules.phase_with_challenge(10**6) is None


def test_pausing_counts_at_once(demo_challenge, host):
    phase_id = demo_challenge.phases.get(codename="dev").pk
    assert not phase_rules.phase_with_challenge(phase_id).is_submission_paused
    hosting.set_paused(host, demo_challenge, True, ChallengePhase.objects.get(pk=phase_id))
    assert phase_rules.phase_with_challenge(phase_id).is_submission_paused


def test_a_change_elsewhere_counts_within_the_bound(demo_challenge, settings):
    settings.PHASE_CACHE_SECONDS = 0.5
    phase_id = demo_challenge.phases.get(codename="dev").pk
    limit = phase_rules.phase_with_challenge(phase_id).max_submissions
    ChallengePhase.objects.filter(pk=phase_id).update(max_submissions=limit + 1)  # another process's edit
    assert phase_rules.phase_with_challenge(phase_id).max_submissions == limit
    time.sleep(0.6)
    assert phase_rules.phase_with_challenge(phase_id).max_submissions == limit + 1


def test_a_pause_landing_while_the_phase_is_read_is_not_outlived(demo_challenge, host):
    """The host pauses (emptying the cache) after a submit read the phase, before it kept it: the old
    row must not be kept, or submissions would pass the pause here for the cache's seconds."""
    phase = demo_challenge.phases.get(codename="dev")
    phase_rules.forget()
    paused = []

    def pause_after_the_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not paused and sql.lstrip().upper().startswith("SELECT") and "challengephase" in sql.lower():
            paused.append(True)
            hosting.set_paused(host, demo_challenge, True, phase)
        return result

    with connection.execute_wrapper(pause_after_the_read):
        assert not phase_rules.phase_with_challenge(phase.pk).is_submission_paused  # read before the pause
    assert paused
    assert phase_rules.phase_with_challenge(phase.pk).is_submission_paused
