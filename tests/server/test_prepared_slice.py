"""``assay.server.prepared.PreparedSlice``: ``qs[:n]`` compiled once and run from any offset must return the
rows ``qs[offset:offset + n]`` returns (Django writes a slice's bounds into its SQL; the offset is a parameter)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from assay.server.prepared import PreparedSlice

pytestmark = pytest.mark.django_db

MARK = "\x00mark"


def test_every_offset_reads_what_the_sliced_queryset_reads():
    User = get_user_model()
    for i in range(7):
        User.objects.create_user(f"slice{i}", f"slice{i}@example.org", None, first_name="x" if i % 2 else "y")
    for first_name in ("x", "y"):
        ordered = User.objects.filter(first_name=first_name).order_by("-username").values_list("username", "id")
        for size in (1, 2, 3):
            window = PreparedSlice(
                User.objects.filter(first_name=MARK).order_by("-username").values_list("username", "id")[:size],
                first_name=MARK,
            )
            for offset in range(0, 6):
                expected = [tuple(r) for r in ordered[offset : offset + size]]
                assert window.rows(offset, first_name=first_name) == expected, (first_name, size, offset)


def test_only_a_slice_from_the_start_and_a_non_negative_offset():
    User = get_user_model()
    qs = User.objects.filter(first_name=MARK).order_by("id").values_list("id")
    for wrong in (qs, qs[2:5], qs[1:]):
        with pytest.raises(ValueError):
            PreparedSlice(wrong, first_name=MARK)
    with pytest.raises(ValueError):
        PreparedSlice(qs[:3], first_name=MARK).rows(-1, first_name="x")
