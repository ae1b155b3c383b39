"""``/me/submissions``: every submission of the user's teams across challenges, newest first, paginated,
results read through ``ResultReader`` (a split hidden from participants stays hidden)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from assay.server.submissions.models import Submission
from assay.server.teams.services import create_host_team
from assay.server.web.views.participant import ALL_MINE_PAGE
from tests.factories import T0, import_published, make_user, register_team

pytestmark = pytest.mark.django_db


def make_sub(challenge, team, user, codename: str, minutes: int, **fields) -> Submission:
    sub = Submission.objects.create(
        phase=challenge.phases.get(codename=codename), participant_team=team, created_by=user, **fields
    )
    Submission.objects.filter(pk=sub.pk).update(submitted_at=T0 + dt.timedelta(minutes=minutes))
    return sub


@pytest.fixture
def two(media, host_team, demo_challenge):
    other = import_published(create_host_team("Hosts Two", make_user("otherhost")))
    alice, bob = make_user("alice"), make_user("bob")
    return {
        "first": demo_challenge,
        "second": other,
        "alice": alice,
        "bob": bob,
        "team1": register_team(demo_challenge, alice, "Alice One"),
        "team2": register_team(other, alice, "Alice Two"),
        "bobs": register_team(demo_challenge, bob, "Bob's"),
    }


def page_of(user, query: str = "") -> str:
    web = Client()
    web.force_login(user)
    response = web.get(f"/me/submissions{query}")
    assert response.status_code == 200
    return response.content.decode()


def test_every_team_every_challenge_newest_first_without_hidden_or_others(two):
    old = make_sub(two["first"], two["team1"], two["alice"], "dev", 1, method_name="first-old")
    new = make_sub(two["second"], two["team2"], two["alice"], "dev", 2, method_name="second-new")
    make_sub(two["first"], two["team1"], two["alice"], "dev", 3, method_name="gone", ignore_submission=True)
    make_sub(two["first"], two["bobs"], two["bob"], "dev", 4, method_name="bobs-own")
    html = page_of(two["alice"])
    assert html.index(f'id="mine-{new.pk}"') < html.index(f'id="mine-{old.pk}"')
    assert "gone" not in html and "bobs-own" not in html
    assert two["second"].title in html and "Alice Two" in html
    assert 'href="/me/submissions"' in html  # the user menu links it


def test_a_split_hidden_from_participants_stays_hidden(two):
    output = {"result": [{"public": {"Accuracy": 0.5}}, {"private": {"Accuracy": 0.987654}}]}
    make_sub(two["first"], two["team1"], two["alice"], "test", 1, status="finished", output=output)
    html = page_of(two["alice"])
    assert "<strong>public</strong>" in html
    assert "<strong>private</strong>" not in html and "0.9877" not in html


def test_pages(two):
    subs = [make_sub(two["first"], two["team1"], two["alice"], "dev", i) for i in range(ALL_MINE_PAGE + 1)]
    first, second = page_of(two["alice"]), page_of(two["alice"], "?page=2")
    assert f'id="mine-{subs[0].pk}"' not in first and f'id="mine-{subs[0].pk}"' in second
    assert first.count('id="mine-') == ALL_MINE_PAGE and second.count('id="mine-') == 1
    assert "Page 1 of 2" in first
    assert page_of(two["alice"], "?page=x").count('id="mine-') == ALL_MINE_PAGE  # a bad page: the first


def test_signed_out_goes_to_sign_in():
    response = Client().get("/me/submissions")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def _mine(two) -> dict[str, Submission]:
    """Alice's three submissions: two challenges, two phases of the first, three statuses; and Bob's one."""
    return {
        "dev": make_sub(two["first"], two["team1"], two["alice"], "dev", 1, status="finished", method_name="m-dev"),
        "test": make_sub(two["first"], two["team1"], two["alice"], "test", 2, status="failed", method_name="m-test"),
        "other": make_sub(two["second"], two["team2"], two["alice"], "dev", 3, method_name="m-other"),
        "bobs": make_sub(two["first"], two["bobs"], two["bob"], "dev", 4, status="finished", method_name="m-bob"),
    }


def _shown(html: str, subs: dict[str, Submission]) -> set[str]:
    return {key for key, sub in subs.items() if f'id="mine-{sub.pk}"' in html}


def test_filters_by_challenge_phase_and_status_keep_them_on_the_pages(two):
    subs = _mine(two)
    first, dev = two["first"], subs["dev"].phase
    assert _shown(page_of(two["alice"], f"?challenge={first.pk}"), subs) == {"dev", "test"}
    assert _shown(page_of(two["alice"], f"?phase={dev.pk}"), subs) == {"dev"}
    assert _shown(page_of(two["alice"], "?status=failed"), subs) == {"test"}
    assert _shown(page_of(two["alice"], f"?challenge={first.pk}&status=submitted"), subs) == set()
    assert _shown(page_of(two["alice"], "?challenge=&phase=&status="), subs) == {"dev", "test", "other"}
    html = page_of(two["alice"], f"?challenge={two['second'].pk}")
    assert f'<option value="{two["second"].pk}" selected>' in html  # the form shows what is applied
    for i in range(ALL_MINE_PAGE):
        make_sub(first, two["team1"], two["alice"], "dev", 10 + i, status="failed")
    assert "?status=failed&page=2" in page_of(two["alice"], "?status=failed")


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("?challenge=abc", "challenge must be a challenge id"),
        ("?phase=-3", "phase must be a phase id"),
        ("?phase=1e3", "phase must be a phase id"),
        ("?challenge=99999999999999999999999", "challenge must be a challenge id"),
        ("?status=done", "status must be one of submitting, submitted"),
        ("?status=" + "x" * 5000, "status must be one of"),
    ],
)
def test_a_bad_filter_is_a_400_saying_which_on_the_page_and_the_api(two, query, named):
    _mine(two)
    web = Client()
    web.force_login(two["alice"])
    page = web.get(f"/me/submissions{query}")
    assert page.status_code == 400 and named in page.content.decode() and 'id="mine-' not in page.content.decode()
    api = Client()
    api.force_login(two["alice"])
    answer = api.get(f"/api/v1/me/submissions{query}")
    if len(query) > 20 and query[1:].startswith("challenge"):  # the API's guard: an id no column holds names nothing
        assert answer.status_code == 404 and "challenge does not exist" in answer.content.decode()
    else:
        assert answer.status_code == 400 and named in answer.content.decode()


def test_the_api_lists_the_same_with_the_same_filters(two):
    subs = _mine(two)
    api = Client()
    api.force_login(two["alice"])

    def ids(query: str = "") -> list[int]:
        answer = api.get(f"/api/v1/me/submissions{query}")
        assert answer.status_code == 200
        return [row["id"] for row in answer.json()["results"]]

    assert ids() == [subs["other"].pk, subs["test"].pk, subs["dev"].pk]  # newest first, never Bob's
    assert ids(f"?challenge={two['first'].pk}") == [subs["test"].pk, subs["dev"].pk]
    assert ids(f"?phase={subs['test'].phase_id}&status=failed") == [subs["test"].pk]
    assert ids(f"?challenge={two['second'].pk}&phase={subs['dev'].phase_id}") == []
    assert ids("?challenge=123456789") == []  # an id that is not theirs matches nothing, as a missing one
