"""FieldsOnce builds a serializer's fields once per class, yet each serializer binds its own copies: a
method field must call its own serializer (its reader and request), never another request's."""

from __future__ import annotations

from assay.server.api.v1.submissions import SubmissionOut


def test_each_serializer_binds_its_own_fields_and_the_built_ones_stay_unbound():
    first = SubmissionOut(context={"reader": "first"})
    second = SubmissionOut(context={"reader": "second"})
    assert first.fields["output"].parent is first
    assert second.fields["output"].parent is second
    assert first.fields["output"] is not second.fields["output"]
    assert set(first.fields) == set(SubmissionOut.Meta.fields)
    assert all(getattr(field, "parent", None) is None for field in SubmissionOut._fields_once.values())
