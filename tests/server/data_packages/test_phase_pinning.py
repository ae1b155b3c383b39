"""Phases that pin a data package version (bundle key ``data_package``, issue 16 items 2-3).

The import resolves the package, the version and each file with its role, and refuses what the importing
host may not pin; the phase then names the version's stored files themselves (no copy) and records the
version. A worker evaluates against those labels; a new version changes nothing already on a leaderboard
until the bundle pins it; a participant never reaches the labels by any route.
"""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage
from django.db.models import ProtectedError
from rest_framework.test import APIClient

from assay.bundle import BundleError
from assay.server.api.evalai.shapes import phase as evalai_phase
from assay.server.challenges.models import Challenge
from assay.server.challenges.services.bundle_import import ImportRefused
from assay.server.challenges.services.package_pins import stored_by_a_package
from assay.server.data_packages.models import DataPackageFile
from assay.server.data_packages.services import access
from assay.server.data_packages.services.access import DataPackageRefusal
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission
from assay.server.submissions.services import jobs, queue, retention
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from assay.server.teams.services import create_host_team
from tests.factories import DEMO_BUNDLE, make_user, register_team, stored_files, upload

from .pinning import (
    CASES,
    DEV_LABELS,
    bundle_folder,
    flipped,
    import_folder,
    labels_version,
    package,
    publish,
    ref,
)

pytestmark = pytest.mark.django_db
PERFECT = (DEMO_BUNDLE.parent / "demo-submissions" / "dev_perfect.json").read_bytes()


def published(challenge: Challenge) -> Challenge:
    Challenge.objects.filter(pk=challenge.pk).update(approved_by_admin=True, published=True)
    challenge.refresh_from_db()
    return challenge


def labels_of(version) -> DataPackageFile:
    return version.files.get(path="labels/dev.json")


# --- the import pins the stored files themselves ------------------------------------------------------


def test_the_phase_names_the_package_file_itself(tmp_path, media, host, host_team) -> None:
    pkg = package(host, host_team)
    v1 = labels_version(host, pkg)
    stored_before = stored_files(media)
    report = import_folder(
        bundle_folder(tmp_path, ref(1, test_inputs="inputs/numbers.txt", case_metadata="metadata/cases.csv")),
        host_team,
    )
    dev = report.challenge.phases.get(codename="dev")
    label = labels_of(v1)
    assert dev.data_package_version == v1
    assert (dev.test_annotation.name, dev.test_annotation_sha256, dev.test_annotation_size) == (
        label.file.name,
        label.sha256,
        label.size,
    )
    inputs = v1.files.get(path="inputs/numbers.txt")
    assert (dev.test_inputs.name, dev.test_inputs_sha256, dev.test_inputs_size) == (
        inputs.file.name,
        inputs.sha256,
        inputs.size,
    )
    metadata = v1.files.get(path="metadata/cases.csv")
    assert (dev.case_metadata.name, dev.case_metadata_sha256) == (metadata.file.name, metadata.sha256)
    assert dev.test_annotation.read() == DEV_LABELS and dev.case_metadata.read() == CASES
    copies = {name for name in stored_files(media) - stored_before if name.startswith(("annotations/", "case_"))}
    assert copies == {n for n in copies if "test_annotations" in n}  # only the test phase's own file was stored
    assert "phase 1 pins data package even-numbers v1" in report.changes
    test = report.challenge.phases.get(codename="test")  # the other phase still embeds its file
    assert test.data_package_version is None and test.test_annotation.name.startswith("annotations/")


def test_a_pinned_version_cannot_be_deleted(tmp_path, media, host, host_team) -> None:
    pkg = package(host, host_team)
    v1 = labels_version(host, pkg)
    import_folder(bundle_folder(tmp_path, ref(1)), host_team)
    with pytest.raises(ProtectedError):
        v1.delete()


def test_reimporting_another_version_repins_and_dropping_the_key_embeds_again(tmp_path, media, host, host_team):
    pkg = package(host, host_team)
    labels_version(host, pkg)
    v2 = labels_version(host, pkg, flipped(DEV_LABELS))
    challenge = import_folder(bundle_folder(tmp_path, ref(1, test_inputs="inputs/numbers.txt")), host_team).challenge
    report = import_folder(bundle_folder(tmp_path, ref(2)), host_team, challenge)
    dev = challenge.phases.get(codename="dev")
    assert dev.data_package_version == v2 and dev.test_annotation.name == labels_of(v2).file.name
    assert "phase 1 pins data package even-numbers v2" in report.changes
    assert not dev.test_inputs and dev.test_inputs_sha256 == ""  # v2's pin names no inputs: v1's are forgotten

    import_folder(bundle_folder(tmp_path, None), host_team, challenge)  # the demo's own annotation file again
    dev.refresh_from_db()
    assert dev.data_package_version is None
    assert dev.test_annotation.name.startswith("annotations/") and dev.test_annotation.read() == DEV_LABELS


def test_a_public_package_of_another_team_may_give_annotations(tmp_path, media, host, host_team) -> None:
    owner = make_user("dataowner")
    pkg = package(owner, create_host_team("Data Owners", owner), access="public")
    v1 = labels_version(owner, pkg)
    challenge = import_folder(bundle_folder(tmp_path, ref(1)), host_team).challenge
    dev = challenge.phases.get(codename="dev")
    assert dev.data_package_version == v1 and dev.test_annotation_sha256 == labels_of(v1).sha256


# --- refusals, before anything is written ---------------------------------------------------------------


def refused(tmp_path, host_team, reference, **dev) -> ImportRefused:
    with pytest.raises(ImportRefused) as caught:
        import_folder(bundle_folder(tmp_path, reference, **dev), host_team)
    assert not Challenge.objects.exists()  # nothing was written
    return caught.value


def test_an_unknown_package_or_version_or_file_is_refused(tmp_path, media, host, host_team) -> None:
    pkg = package(host, host_team)
    labels_version(host, pkg)
    labels_version(host, pkg, flipped(DEV_LABELS))
    found = refused(tmp_path, host_team, ref(1, slug="no-such-package"))
    assert (found.code, found.status) == ("data_package_not_found", 400)
    found = refused(tmp_path, host_team, ref(3))
    assert found.code == "data_package_version_not_found" and "no version 3 (the latest is version 2)" in found.message
    found = refused(tmp_path, host_team, dict(ref(1), annotations="labels/test.json"))
    assert found.code == "data_package_file_not_found"
    assert "'labels/test.json'" in found.message and "its labels files: labels/dev.json" in found.message


def test_a_package_without_versions_says_so(tmp_path, media, host, host_team) -> None:
    package(host, host_team)
    found = refused(tmp_path, host_team, ref(1))
    assert found.code == "data_package_version_not_found" and "it has no published version" in found.message


def test_a_file_of_another_role_is_refused(tmp_path, media, host, host_team) -> None:
    """The bundle reader refuses a path outside its role's folder; the import checks the stored role itself."""
    v1 = labels_version(host, package(host, host_team))
    with pytest.raises(BundleError) as caught:
        import_folder(bundle_folder(tmp_path, dict(ref(1), annotations="inputs/numbers.txt")), host_team)
    assert [p.code for p in caught.value.errors] == ["data_package_wrong_folder"]
    inputs = v1.files.get(path="inputs/numbers.txt")
    DataPackageFile.objects.create(  # a row whose role is not its folder's (not what publishing writes)
        version=v1, path="labels/odd.json", role="inputs", file=inputs.file.name, sha256=inputs.sha256, size=1
    )
    found = refused(tmp_path, host_team, dict(ref(1), annotations="labels/odd.json"))
    assert found.code == "data_package_wrong_role"
    assert "'labels/odd.json' has the role inputs; data_package.annotations needs a file of the role labels" in (
        found.message
    )


def test_another_teams_package_is_the_data_owners_decision(tmp_path, media, host, host_team) -> None:
    owner = make_user("dataowner")
    owners = create_host_team("Data Owners", owner)
    for slug, policy in (("on-request", "on_request"), ("hosts-only", "hosts_only"), ("public-set", "public")):
        labels_version(owner, package(owner, owners, slug=slug, access=policy))
    found = refused(tmp_path, host_team, ref(1, slug="on-request"))
    assert (found.code, found.status) == ("data_package_not_yours", 403) and "data owner decides" in found.message
    found = refused(tmp_path, host_team, ref(1, slug="hosts-only"))  # its very name is not told
    assert (found.code, found.message) == (
        "data_package_not_found",
        "phase 'dev': data_package 'hosts-only': there is no such data package",
    )
    found = refused(tmp_path, host_team, ref(1, slug="public-set", case_metadata="metadata/cases.csv"))
    assert found.code == "data_package_not_yours"
    assert "case metadata stays with the package's host team" in found.message
    found = refused(tmp_path, host_team, ref(1, slug="public-set", annotations="labels/nothing.json"))
    assert found.code == "data_package_file_not_found" and "its labels files" not in found.message  # not listed


def test_another_teams_labels_never_go_to_a_remote_challenge(tmp_path, media, host, host_team) -> None:
    owner = make_user("dataowner")
    labels_version(owner, package(owner, create_host_team("Data Owners", owner), access="public"))
    folder = bundle_folder(tmp_path, ref(1))
    config = folder / "challenge_config.yaml"
    text = config.read_text()
    assert "remote_evaluation: false" in text
    config.write_text(text.replace("remote_evaluation: false", "remote_evaluation: true"))
    with pytest.raises(ImportRefused) as caught:
        import_folder(folder, host_team)
    assert caught.value.code == "data_package_not_yours" and "remote-evaluation" in caught.value.message


def test_package_metadata_is_checked_at_import_with_the_audit_subgroups(tmp_path, media, host, host_team) -> None:
    pkg = package(host, host_team)
    labels_version(host, pkg)
    audit = {"task": "binary", "threshold": 0.5, "subgroups": ["sex", "camera"]}
    found = refused(tmp_path, host_team, ref(1, case_metadata="metadata/cases.csv"), audit=audit)
    assert found.code == "bad_case_metadata" and "'camera' is not a column of 'metadata/cases.csv'" in found.message
    publish(host, pkg, {"labels/dev.json": DEV_LABELS, "metadata/cases.csv": b"id,sex\n1,F\n"})
    found = refused(tmp_path, host_team, ref(2, case_metadata="metadata/cases.csv"))
    assert found.code == "bad_case_metadata" and "the header must start with the column case_id" in found.message
    audit["subgroups"] = ["sex", "age_band"]
    folder = bundle_folder(tmp_path, ref(1, case_metadata="metadata/cases.csv"), audit=audit)
    assert import_folder(folder, host_team).challenge.phases.get(codename="dev").case_metadata_sha256


# --- retention and the faces ------------------------------------------------------------------------------


def test_retention_never_deletes_a_package_file(tmp_path, media, host, host_team) -> None:
    v1 = labels_version(host, package(host, host_team))
    name = labels_of(v1).file.name
    assert stored_by_a_package in retention.KEEPERS and stored_by_a_package(name)
    retention._delete_unshared([name])  # as if a settled submission had named it
    assert default_storage.exists(name)
    assert not stored_by_a_package("submissions/x/other.json")


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_the_phase_representation_names_the_pin_to_who_may_see_the_package(tmp_path, media, host, host_team):
    pkg = package(host, host_team, access="public")
    labels_version(host, pkg)
    challenge = published(import_folder(bundle_folder(tmp_path, ref(1)), host_team).challenge)
    dev = challenge.phases.get(codename="dev")
    participant = make_user("alice")
    register_team(challenge, participant, "Team Alice")
    for user in (None, participant, host):
        body = api(user).get(f"/api/v1/phases/{dev.pk}").json()
        assert body["data_package"] == {"name": "even-numbers", "version": 1}
        listed = api(user).get(f"/api/v1/challenges/{challenge.pk}/phases").json()["results"]
        assert [p["data_package"] for p in listed] == [{"name": "even-numbers", "version": 1}, None]
        text = json.dumps(body)
        assert dev.test_annotation_sha256 not in text and "labels/" not in text
    pkg.access = "hosts_only"
    pkg.save()
    assert api(participant).get(f"/api/v1/phases/{dev.pk}").json()["data_package"] is None
    assert api(host).get(f"/api/v1/phases/{dev.pk}").json()["data_package"] == {"name": "even-numbers", "version": 1}


def test_evalais_phase_gives_hosts_another_teams_labels_never(tmp_path, media, host, host_team, rf) -> None:
    owner = make_user("dataowner")
    labels_version(owner, package(owner, create_host_team("Data Owners", owner), access="public"))
    challenge = published(import_folder(bundle_folder(tmp_path, ref(1)), host_team).challenge)
    request = rf.get("/")
    request.user = host
    shapes = {p.codename: evalai_phase(request, p) for p in challenge.phases.all()}
    assert shapes["dev"]["test_annotation"] is None  # the data owner's labels
    assert shapes["test"]["test_annotation"]  # the bundle's own file, as before

    own = package(host, host_team, slug="own-set")
    labels_version(host, own)
    mine = published(import_folder(bundle_folder(tmp_path, ref(1, slug="own-set"), name="own"), host_team).challenge)
    shapes = {p.codename: evalai_phase(request, p) for p in mine.phases.all()}
    assert shapes["dev"]["test_annotation"]  # the owners' own labels: as any annotation file
    request.user = make_user("alice")
    register_team(mine, request.user, "Team Alice")
    assert [evalai_phase(request, p)["test_annotation"] for p in mine.phases.all()] == [None, None]  # participants


def test_a_participant_never_reaches_the_labels(tmp_path, media, host, host_team) -> None:
    pkg = package(host, host_team, access="public")
    v1 = labels_version(host, pkg)
    challenge = published(import_folder(bundle_folder(tmp_path, ref(1)), host_team).challenge)
    dev = challenge.phases.get(codename="dev")
    participant = make_user("alice")
    register_team(challenge, participant, "Team Alice")
    label = labels_of(v1)
    with pytest.raises(DataPackageRefusal) as caught:  # the package's own download rule
        access.readable_file(participant, pkg, 1, "labels/dev.json")
    assert caught.value.status == 404
    sub = submit(participant, dev, upload(PERFECT), "preds.json", SubmissionFields())
    token, other = create_worker_token(None, "w")[0], create_worker_token(None, "other")[0]
    assert jobs.file_for_worker(token, label.sha256) is None  # a job not yet held: nothing
    held = queue.claim_next(token, "w1")
    assert held is not None and held.pk == sub.pk
    assert jobs.file_for_worker(token, label.sha256).name == label.file.name  # the job it holds: its labels
    assert jobs.file_for_worker(other, label.sha256) is None  # a worker that holds no job of the phase: nothing
    for path in (f"/api/v1/worker/files/{label.sha256}", f"/api/v1/submissions/{sub.pk}"):
        response = api(participant).get(path)
        assert label.sha256 not in response.content.decode(errors="replace")
        assert label.file.name not in response.content.decode(errors="replace")
    assert api(participant).get(f"/api/v1/worker/files/{label.sha256}").status_code in (401, 403)


# --- end to end through the real worker ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("transport", ["http", "inprocess"])  # a remote worker's, and the in-process worker's
def test_a_worker_scores_against_the_pinned_version_and_a_new_one_changes_no_result(
    live_server, tmp_path, media, host, host_team, admin_user, transport
) -> None:
    from tests.server.submissions.test_worker_e2e import post_submission, run_worker_thread

    pkg = package(host, host_team)
    labels_version(host, pkg)
    challenge = published(import_folder(bundle_folder(tmp_path, ref(1)), host_team).challenge)
    dev = challenge.phases.get(codename="dev")
    participant = make_user("alice")
    register_team(challenge, participant, "Team Alice")
    _, token = create_worker_token(admin_user, "pinned")

    first = post_submission(participant, dev, PERFECT)
    run_worker_thread(live_server.url, token, tmp_path / "w1", transport=transport).thread.join(120)
    sub = Submission.objects.get(pk=first)
    assert sub.status == "finished", (sub.status, sub.failure_reason)
    assert LeaderboardEntry.objects.get(submission=sub).result == {"Accuracy": 1.0, "F1": 1.0}

    labels_version(host, pkg, flipped(DEV_LABELS))  # v2: every public label flipped
    dev.refresh_from_db()
    assert dev.data_package_version.number == 1  # publishing changes no phase
    again = post_submission(participant, dev, PERFECT)
    run_worker_thread(live_server.url, token, tmp_path / "w2", transport=transport).thread.join(120)
    assert LeaderboardEntry.objects.get(submission_id=again).result == {"Accuracy": 1.0, "F1": 1.0}  # still v1

    import_folder(bundle_folder(tmp_path, ref(2)), host_team, challenge)  # the host pins v2
    third = post_submission(participant, dev, PERFECT)
    run_worker_thread(live_server.url, token, tmp_path / "w3", transport=transport).thread.join(120)
    assert LeaderboardEntry.objects.get(submission_id=third).result["Accuracy"] == 0.0  # scored against v2
    assert LeaderboardEntry.objects.get(submission=sub).result == {"Accuracy": 1.0, "F1": 1.0}  # untouched


def test_an_oversized_package_metadata_file_is_refused(tmp_path, media, host, host_team, monkeypatch) -> None:
    from assay.bundle import case_metadata

    labels_version(host, package(host, host_team))
    monkeypatch.setattr(case_metadata, "MAX_BYTES", len(CASES) - 1)
    found = refused(tmp_path, host_team, ref(1, case_metadata="metadata/cases.csv"))
    assert found.code == "bad_case_metadata" and f"larger than {len(CASES) - 1} bytes" in found.message


def test_a_static_dataset_container_reads_the_packages_inputs(tmp_path, media, host, host_team) -> None:
    from tests.server.images import fake_image_tarball

    v1 = labels_version(host, package(host, host_team))
    top = {"is_docker_based": True, "is_static_dataset_code_upload": True, "max_docker_image_size": 10 * 1024**2}
    folder = bundle_folder(tmp_path, ref(1, test_inputs="inputs/numbers.txt"), top=top)
    challenge = published(import_folder(folder, host_team).challenge)
    dev = challenge.phases.get(codename="dev")
    participant = make_user("alice")
    register_team(challenge, participant, "Team Alice")
    sub = submit(participant, dev, upload(fake_image_tarball(), "image.tar"), "image.tar", SubmissionFields())
    token, secret = create_worker_token(None, "containers")
    worker = APIClient()
    worker.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    inputs = v1.files.get(path="inputs/numbers.txt")
    assert worker.get(f"/api/v1/worker/files/{inputs.sha256}").status_code == 404  # no job held yet
    job = worker.post("/api/v1/worker/claim", {"worker_id": "w", "containers": True}, format="json").json()["job"]
    assert job["submission_id"] == sub.pk
    assert job["container"]["test_inputs"]["sha256"] == inputs.sha256
    assert job["annotation"]["sha256"] == labels_of(v1).sha256
    for info, data in ((job["container"]["test_inputs"], b"1\n2\n3\n"), (job["annotation"], DEV_LABELS)):
        response = worker.get(f"/api/v1/worker/files/{info['sha256']}")
        assert response.status_code == 200 and b"".join(response.streaming_content) == data
    assert "labels/" not in json.dumps(job) and "metadata/" not in json.dumps(job)
