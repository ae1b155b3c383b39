"""Models registered once and submitted to many phases (issue 16 item 1): registration, immutable versions,
submitting through the normal submit() (limits, participation, kinds), the one access rule, the results a
reader sees. Runs without Docker: images are ``docker save``-shaped tarballs built in memory."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from assay.server.models_zoo.models import Model
from assay.server.models_zoo.services import access, card, page, registry, submitting
from assay.server.models_zoo.services.access import ModelRefusal
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.submit import SubmissionFields
from tests.factories import import_published, make_user, register_team, stored_files, upload
from tests.server.images import digest_of, fake_image_tarball
from tests.server.submissions.test_code_bundles import GOOD, zipped
from tests.server.submissions.test_container_submissions import static_challenge  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
CARD = {
    "summary": "Counts numbers.",
    "intended_use": "Screening support for retina specialists.",
    "output_significance": "Informs clinical management",
    "data_sources": "Two public data sets.",
    "licence": "Apache-2.0",
    "contact": "alice@uni.example",
}


def finish(sub, accuracy: float = 0.9):
    """Complete a model's submission as a worker that runs images and code bundles would, with a result."""
    from assay.server.submissions.services import queue
    from assay.server.submissions.services.tokens import create_worker_token

    token = create_worker_token(None, "test")[0]
    claimed = queue.claim_next(token, "w", containers=True, code_bundles=True)
    assert claimed is not None and claimed.pk == sub.pk
    splits = sorted(ps.dataset_split.codename for ps in sub.phase.phase_splits.select_related("dataset_split"))
    output = {"result": [{s: {"Accuracy": accuracy, "F1": 0.8}} for s in splits]}
    return queue.complete(token, sub.pk, queue.Completion(attempt=claimed.attempt, output=output, stdout="out"))


def image_model(user, team, tarball: bytes | None = None, name: str = "counter") -> Model:
    data = tarball or fake_image_tarball()
    return registry.register(
        user, team=team, name=name, kind="image", file=upload(data, "model.tar"), file_name="model.tar", card=CARD
    )


def test_register_an_image_model_with_its_card_and_first_version(participant, team, media):
    data = fake_image_tarball()
    model = image_model(participant, team, data)
    version = model.versions.get()
    assert (version.number, version.image_digest, version.file_size) == (1, digest_of(data), len(data))
    assert version.file.name.startswith(f"models/{version.file_sha256}/")
    assert model.intended_use == CARD["intended_use"] and not model.is_published
    prefill = card.questionnaire_prefill(version)
    assert prefill["intended_use"] == CARD["intended_use"] and digest_of(data) in prefill["model_version"]


def test_versions_are_kept_and_immutable(participant, team, media):
    model = image_model(participant, team)
    first = model.versions.get()
    second = registry.add_version(
        participant, model, file=upload(fake_image_tarball(padding=10), "m.tar"), file_name="m.tar", label="1.1"
    )
    assert [v.number for v in model.versions.all()] == [2, 1] and second.file_sha256 != first.file_sha256
    with pytest.raises(ModelRefusal, match="already version 1"):
        registry.add_version(participant, model, file=upload(fake_image_tarball(), "m.tar"), file_name="m.tar")
    first.file_sha256 = "0" * 64
    with pytest.raises(ValueError, match="immutable"):
        first.save()
    first.refresh_from_db()
    first.notes = "notes may change"
    first.save()


@pytest.mark.parametrize(
    ("kind", "data", "name", "code"),
    [
        ("image", lambda: fake_image_tarball(user="0"), "m.tar", "image_refused"),
        ("image", lambda: b"not a tarball", "m.tar", "image_refused"),
        ("image", lambda: fake_image_tarball(), "m.zip", "file_type_not_allowed"),
        ("code_bundle", lambda: zipped({"predict.py": "1"}), "m.zip", "code_bundle_refused"),
        ("code_bundle", lambda: zipped({"run.sh": "1", "../x": "1"}), "m.zip", "code_bundle_refused"),
        ("weights", lambda: zipped(GOOD), "m.zip", "invalid"),
    ],
)
def test_bad_files_and_kinds_are_refused_and_nothing_is_stored(participant, team, media, kind, data, name, code):
    with pytest.raises((ModelRefusal, SubmissionError)) as exc:
        registry.register(participant, team=team, name="m", kind=kind, file=upload(data(), name), file_name=name)
    assert exc.value.code == code
    assert not Model.objects.exists() and not [f for f in stored_files(media) if f.startswith("models/")]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"name": ""}, "name"),
        ({"name": "../../etc"}, "name"),
        ({"name": "a\x00b"}, "control character"),
        ({"card": {"intended_use": "x\x00"}}, "control character"),
        ({"card": {"intended_use": "x" * (card.TEXT_MAX + 1)}}, "at most"),
        ({"card": {"licence": "x" * 201}}, "at most"),
        ({"card": {"intended_usage": "typo"}}, "unknown card fields"),
        ({"card": {"output_significance": "Very much"}}, "must be one of"),
        ({"card": {"intended_use": 3}}, "must be text"),
        ({"card": ["not", "an", "object"]}, "must be an object"),
        ({"label": "l" * 101}, "at most"),
    ],
)
def test_hostile_names_and_cards_are_refused(participant, team, media, changes, words):
    args = {"name": "m", "kind": "image", "card": CARD, "label": ""} | changes
    with pytest.raises(ModelRefusal, match=words):
        registry.register(participant, team=team, file=upload(fake_image_tarball(), "m.tar"), file_name="m.tar", **args)
    assert not Model.objects.exists()


def test_a_name_is_once_per_team_and_only_members_register(participant, team, media):
    image_model(participant, team)
    with pytest.raises(ModelRefusal) as exc:
        image_model(participant, team)
    assert exc.value.status == 409
    bob = make_user("bob")
    with pytest.raises(ModelRefusal) as exc:
        registry.register(bob, team=team, name="x", kind="image", file=upload(fake_image_tarball()), file_name="m.tar")
    assert exc.value.status == 403


def test_private_until_published_for_every_reader(participant, team, media, host):
    model = image_model(participant, team)
    bob, staff = make_user("bob"), make_user("root1", staff=True)
    from django.contrib.auth.models import AnonymousUser

    readers = {"team": participant, "bob": bob, "host": host, "staff": staff, "anonymous": AnonymousUser()}
    seen = {who: access.can_view(user, model) for who, user in readers.items()}
    assert seen == {"team": True, "bob": False, "host": False, "staff": True, "anonymous": False}
    assert list(access.visible_models(bob)) == [] and list(access.visible_models(participant)) == [model]
    with pytest.raises(ModelRefusal) as exc:
        registry.publish(bob, model, True)
    assert exc.value.status == 403
    registry.publish(participant, model, True)
    seen = {who: access.can_view(user, model) for who, user in readers.items()}
    assert seen == {"team": True, "bob": True, "host": True, "staff": True, "anonymous": False}
    with pytest.raises(ModelRefusal) as exc:
        access.managed_model(bob, model.pk)
    assert exc.value.status == 403


def test_submitting_a_version_reuses_its_stored_file_through_the_normal_limits(
    participant,
    team,
    media,
    static_challenge,  # noqa: F811
):
    model = image_model(participant, team)
    version = model.versions.get()
    before = stored_files(media)
    dev, test = (static_challenge.phases.get(codename=c) for c in ("dev", "test"))
    subs = [submitting.submit_model(participant, version, phase, SubmissionFields()) for phase in (dev, test)]
    assert stored_files(media) == before  # nothing uploaded or copied
    for sub in subs:
        assert sub.input_file.name == version.file.name and sub.input_file_sha256 == version.file_sha256
        assert sub.image_digest == version.image_digest and sub.method_name == "counter v1"
        assert sub.model_source.version == version
    assert registry.stored_by_a_version(version.file.name)
    test.max_submissions_per_day = 2
    test.save()
    submitting.submit_model(participant, version, test, SubmissionFields())
    with pytest.raises(SubmissionError) as exc:
        submitting.submit_model(participant, version, test, SubmissionFields())
    assert (exc.value.code, exc.value.status) == ("limit_day", 403)
    assert [p.codename for p in submitting.phases_for(model)] == ["dev", "test"]


def test_submitting_is_refused_for_other_kinds_teams_and_phases(participant, team, media, static_challenge, host_team):  # noqa: F811
    model = image_model(participant, team)
    version = model.versions.get()
    plain = import_published(host_team)  # predictions only: takes no model
    register_team(plain, participant, "Team Alice 2")
    with pytest.raises(ModelRefusal) as exc:
        submitting.submit_model(participant, version, plain.phases.get(codename="dev"), SubmissionFields())
    assert exc.value.code == "kind_not_accepted"
    bob = make_user("bob")
    register_team(static_challenge, bob, "Team Bob")
    with pytest.raises(ModelRefusal) as exc:
        submitting.submit_model(bob, version, static_challenge.phases.get(codename="dev"), SubmissionFields())
    assert exc.value.status == 403
    assert plain not in {p.challenge for p in submitting.phases_for(model)}


def test_the_page_lists_each_readers_results_by_the_submissions_rule(participant, team, media, static_challenge, host):  # noqa: F811
    model = registry.register(
        participant, team=team, name="bundle", kind="code_bundle", file=upload(zipped(GOOD), "m.zip"), file_name="m.zip"
    )
    version = model.versions.get()
    dev = static_challenge.phases.get(codename="dev")
    sub = submitting.submit_model(participant, version, dev, SubmissionFields(is_public=False))
    finish(sub)
    assert [r.submission.pk for r in page.results(participant, model)] == [sub.pk]
    assert page.results(participant, model)[0].output is not None
    assert [r.submission.pk for r in page.results(host, model)] == [sub.pk]  # the challenge's host
    registry.publish(participant, model, True)
    bob = make_user("bob")
    assert page.results(bob, model) == []  # a private submission stays out of strangers' view
    sub.is_public = True
    sub.save()
    assert [r.submission.pk for r in page.results(bob, model)] == [sub.pk]
    assert default_storage.exists(version.file.name)


def test_retention_keeps_a_versions_file(participant, team, media, static_challenge):  # noqa: F811
    from assay.server.submissions.services import retention

    version = image_model(participant, team).versions.get()
    sub = submitting.submit_model(participant, version, static_challenge.phases.get(codename="dev"), SubmissionFields())
    retention._delete_unshared([sub.input_file.name])
    assert default_storage.exists(version.file.name)
