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


def test_input_serializers_validate_on_their_own_copies():
    """The submit form's fields are built once too: one form's values and errors never reach another's."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from assay.server.api.v1.submissions import SubmitIn

    good = SubmitIn(data={"input_file": SimpleUploadedFile("a.json", b"{}"), "project_url": "https://example.org/a"})
    bad = SubmitIn(data={"project_url": "not a url", "method_name": "x" * 5000, "submission_metadata": "{"})
    assert good.is_valid(), good.errors
    assert not bad.is_valid()
    assert set(bad.errors) == {"input_file", "project_url", "method_name", "submission_metadata"}
    assert good.validated_data["project_url"] == "https://example.org/a"
    assert good.fields["project_url"] is not bad.fields["project_url"]
    assert good.fields["project_url"].parent is good and bad.fields["project_url"].parent is bad
    assert all(getattr(field, "parent", None) is None for field in SubmitIn._fields_once.values())
    again = SubmitIn(data={"input_file": SimpleUploadedFile("b.json", b"{}"), "project_url": "not a url either"})
    assert not again.is_valid() and set(again.errors) == {"project_url"}
