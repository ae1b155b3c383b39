"""A host edits a challenge's texts, dates and phases without a bundle: the bundle's rules, the caches, refusals."""

from __future__ import annotations

import datetime as dt

import pytest

from assay.server.challenges.models import ChallengePhase
from assay.server.challenges.services import editing, phase_rules
from assay.server.challenges.services.editing import EditRefused
from assay.server.challenges.services.hosting import HostingError, update_phase
from assay.server.challenges.services.read_versions import LIST, board
from assay.server.read_cache import versions
from assay.server.refusals import Refusal

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def test_texts_and_dates_saved_with_seconds(demo_challenge, host):
    changed = editing.edit_challenge(
        host,
        demo_challenge,
        {
            "title": "Renamed",
            "description": "<p>New <b>overview</b></p>",
            "terms_and_conditions": "<p>Be kind</p>",
            "end_date": "2098-12-31 23:59:59",
        },
    )
    assert set(changed) == {"title", "description", "terms_and_conditions", "end_date"}
    demo_challenge.refresh_from_db()
    assert demo_challenge.title == "Renamed"
    assert demo_challenge.end_date == dt.datetime(2098, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert editing.edit_challenge(host, demo_challenge, {"title": "Renamed"}) == []


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"title": ""}, "title: String should have at least 1 character"),
        ({"title": "x" * 101}, "title: String should have at most 100 characters"),
        ({"start_date": "2100-01-01 00:00:00"}, "start_date is after end_date"),
        ({"end_date": "tomorrow"}, "write it as YYYY-MM-DD HH:MM:SS (UTC)"),
        ({"description": 5}, "description: must be text"),
        ({"description": "a\x00b"}, "null characters"),
        ({"codename": "x"}, "these cannot be changed here: codename"),
    ],
)
def test_challenge_edit_refused_as_a_bundle_would_be(demo_challenge, host, values, said):
    before = demo_challenge.title
    with pytest.raises(EditRefused) as caught:
        editing.edit_challenge(host, demo_challenge, values)
    assert said in caught.value.message
    demo_challenge.refresh_from_db()
    assert demo_challenge.title == before


def test_oversized_html_refused(demo_challenge, host, settings):
    limit = settings.BUNDLE_LIMITS.max_text_bytes
    with pytest.raises(EditRefused, match=f"the limit is {limit}"):
        editing.edit_challenge(host, demo_challenge, {"description": "é" * limit})


def test_only_hosts_edit(demo_challenge, participant):
    with pytest.raises(HostingError) as caught:
        editing.edit_challenge(participant, demo_challenge, {"title": "Mine"})
    assert caught.value.status == 403


def test_phase_edit_normalises_and_replaces_caches(demo_challenge, host):
    phase = demo_challenge.phases.get(codename="dev")
    assert phase_rules.phase_with_challenge(phase.pk).name == phase.name  # cached now
    before = versions(LIST, board(demo_challenge.pk))
    changed = editing.edit_phase(
        host,
        phase,
        {
            "name": "Try-out phase",
            "description": "<p>Try here</p>",
            "max_submissions_per_day": "5",
            "max_submissions_per_month": None,
            "max_submissions": 40,
            "allowed_submission_file_types": ["json", "CSV"],
            "is_submission_public": True,
            "end_date": dt.datetime(2099, 1, 1, 12, 0, 30, tzinfo=UTC),
        },
    )
    assert "name" in changed and "allowed_submission_file_types" in changed
    phase.refresh_from_db()
    assert phase.max_submissions_per_day == 5
    assert phase.max_submissions_per_month == 40  # as a bundle without it: max_submissions
    assert phase.allowed_submission_file_types == "json, CSV"
    assert phase.end_date.second == 30
    assert phase_rules.phase_with_challenge(phase.pk).name == "Try-out phase"
    assert versions(LIST, board(demo_challenge.pk)) != before


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"max_submissions_per_day": -1}, "max_submissions_per_day: Input should be greater than or equal to 0"),
        ({"max_submissions": "many"}, "max_submissions: Input should be a valid integer"),
        ({"allowed_submission_file_types": " , "}, "allowed_submission_file_types lists no extension"),
        ({"start_date": "2100-01-01"}, "start_date is after end_date"),
        ({"name": "n" * 101}, "name: String should have at most 100 characters"),
        ({"codename": "other"}, "these cannot be changed here: codename"),
    ],
)
def test_phase_edit_refused_as_a_bundle_would_be(demo_challenge, host, values, said):
    phase = demo_challenge.phases.get(codename="dev")
    with pytest.raises(EditRefused) as caught:
        editing.edit_phase(host, phase, values)
    assert said in caught.value.message
    assert caught.value.problems


def test_phase_rules_span_keys_in_the_settings_form_too(demo_challenge, host):
    """The settings form's save runs the same rules: public submissions and 'select one' exclude each other."""
    phase = demo_challenge.phases.get(codename="dev")
    ChallengePhase.objects.filter(pk=phase.pk).update(is_restricted_to_select_one_submission=True)
    phase.refresh_from_db()
    with pytest.raises(EditRefused, match="cannot both be true"):
        update_phase(host, phase, {"is_submission_public": True})
    with pytest.raises(EditRefused, match="start_date is after end_date"):
        update_phase(host, phase, {"end_date": phase.start_date - dt.timedelta(seconds=1)})


def test_removing_a_leaderboard_with_results_is_refused(world, host):
    world.result("A", 0.5, 0.5, phase="test")  # on the test phase's public split only
    used, unused = world.ps("test", "public"), world.ps("test", "private")
    with pytest.raises(Refusal) as caught:
        editing.remove_phase_split(host, used)
    assert caught.value.code == "phase_split_has_results"
    assert "has results and cannot be removed" in caught.value.message
    editing.remove_phase_split(host, unused)
    assert not type(unused).objects.filter(pk=unused.pk).exists()


def test_api_patch_challenge_and_phase(demo_challenge, host, participant):
    from tests.factories import client_for

    api = client_for(host)
    answer = api.patch(
        f"/api/v1/challenges/{demo_challenge.pk}",
        {"title": "By API", "end_date": "2098-03-01T10:00:05Z"},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["title"] == "By API" and answer.json()["end_date"].startswith("2098-03-01T10:00:05")
    refused = api.patch(f"/api/v1/challenges/{demo_challenge.pk}", {"slug": "mine", "title": ""}, format="json")
    assert refused.status_code == 400 and "slug" in refused.json()["error"]["message"]
    phase = demo_challenge.phases.get(codename="dev")
    answer = api.patch(f"/api/v1/phases/{phase.pk}", {"max_submissions_per_day": 9}, format="json")
    assert answer.status_code == 200 and answer.json()["max_submissions_per_day"] == 9
    refused = api.patch(f"/api/v1/phases/{phase.pk}", {"max_submissions_per_day": -2}, format="json")
    assert refused.status_code == 400
    assert api.patch(f"/api/v1/phases/{phase.pk}", [1, 2], format="json").status_code == 400
    assert client_for(participant).patch(f"/api/v1/phases/{phase.pk}", {"name": "x"}, format="json").status_code == 403
