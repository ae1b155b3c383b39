"""RowCache hands each caller its own copy of a model row and of its cached relations, made without
``copy.copy``'s pickling protocol: the copy must still behave as the row (saved, compared, related)."""

from __future__ import annotations

import pytest

from assay.server.challenges.models import ChallengePhase
from assay.server.row_cache import RowCache

pytestmark = pytest.mark.django_db


def test_a_hit_copies_the_row_and_each_cached_relation(demo_challenge):
    row = ChallengePhase.objects.select_related("challenge__host_team").filter(challenge=demo_challenge).first()
    cache: RowCache[ChallengePhase] = RowCache(lambda: 60, related=("challenge", "challenge.host_team"))
    cache.put(row.pk, row, cache.stamp())
    first, second = cache.get(row.pk), cache.get(row.pk)
    assert first is not row and first is not second and first == row
    assert first.challenge is not second.challenge and first.challenge is not row.challenge
    assert first.challenge.host_team is not second.challenge.host_team
    assert first._state is not row._state and first._state.fields_cache is not row._state.fields_cache
    assert (first._state.db, first._state.adding) == (row._state.db, row._state.adding)

    first.name = "changed"
    first.challenge.title = "changed"
    first.challenge.host_team.name = "changed"
    again = cache.get(row.pk)
    assert (again.name, again.challenge.title) == (row.name, row.challenge.title)
    assert again.challenge.host_team.name == row.challenge.host_team.name

    again.name = "saved from a copy"  # a copy is a working instance
    again.save(update_fields=["name"])
    assert ChallengePhase.objects.get(pk=row.pk).name == "saved from a copy"


def test_a_relation_not_loaded_with_the_row_is_fetched_into_the_copy_only(demo_challenge):
    row = ChallengePhase.objects.filter(challenge=demo_challenge).first()  # no select_related
    cache: RowCache[ChallengePhase] = RowCache(lambda: 60, related=("challenge",))
    cache.put(row.pk, row, cache.stamp())
    copy = cache.get(row.pk)
    assert copy.challenge.pk == demo_challenge.pk
    assert "challenge" not in row._state.fields_cache


def test_an_immutable_value_is_handed_out_as_is():
    value = (1, frozenset({2}))
    cache: RowCache[tuple] = RowCache(lambda: 60)
    cache.put("k", value, cache.stamp())
    assert cache.get("k") is value
