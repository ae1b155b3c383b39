"""Data packages (issue 16 item 2): the one access rule for every role and policy, publishing versions from a
role-foldered zip (hostile archives refused, files stored once by sha256, immutable numbered versions),
access requests and their states, and a log row per download."""

from __future__ import annotations

import io
import stat

import pytest
from django.core.files.storage import default_storage

from assay.server.data_packages.models import AccessRequest, DataPackage, DataPackageFile, DownloadRecord
from assay.server.data_packages.services import access, access_requests, downloads, publishing
from assay.server.data_packages.services.access import DataPackageRefusal
from assay.server.teams.services import create_host_team
from tests.factories import make_user, stored_files
from tests.zips import patched_entry

from .archives import FILES, INPUTS, LABELS, bomb_zip, duplicate_zip, named_zip, package_zip, symlink_zip

pytestmark = pytest.mark.django_db
CARD = {
    "summary": "Retina photographs of diabetic patients.",
    "source": "Two eye clinics",
    "collection_period": "2019-2021",
    "population": "Adults over 40",
    "labelling": "Two graders, adjudicated",
    "licence": "CC-BY-NC-4.0",
    "limitations": "One camera model",
    "contact": "data@clinic.example",
}


@pytest.fixture
def people(host, host_team):
    """Every role the rule tells apart: an owner, a second owner, a signed-in stranger, staff, anonymous."""
    from django.contrib.auth.models import AnonymousUser

    co_host = make_user("cohost")
    host_team.memberships.create(user=co_host)
    other_host = make_user("otherhost")
    create_host_team("Other Hosts", other_host)
    return {
        "owner": host,
        "co_owner": co_host,
        "other_host": other_host,
        "user": make_user("reader"),
        "staff": make_user("staffer", staff=True),
        "anonymous": AnonymousUser(),
    }


def make_package(host, host_team, policy: str = "on_request", slug: str = "retina") -> DataPackage:
    return publishing.create_package(host, host_team.pk, slug, "Retina screening set", policy, CARD)


def publish(user, package, files=None, notes: str = ""):
    return publishing.publish_version(user, package, io.BytesIO(package_zip(files)), notes)


def approve(owner, package, user):
    req = access_requests.request_access(user, package, "benchmarking")
    return access_requests.decide(owner, package, req.pk, True)


# --- the rule --------------------------------------------------------------------------------------------

SEES = {  # policy → roles that read the card
    "public": {"owner", "co_owner", "other_host", "user", "staff", "anonymous"},
    "on_request": {"owner", "co_owner", "other_host", "user", "staff"},
    "hosts_only": {"owner", "co_owner", "staff"},
}
READS_INPUTS = {
    "public": {"owner", "co_owner", "other_host", "user", "staff", "anonymous"},
    "on_request": {"owner", "co_owner"},
    "hosts_only": {"owner", "co_owner"},
}


@pytest.mark.parametrize("policy", ["public", "on_request", "hosts_only"])
def test_who_sees_a_package_and_reads_its_inputs_for_every_policy(people, host, host_team, media, policy):
    package = make_package(host, host_team, policy)
    version = publish(host, package)
    inputs = version.files.get(path="inputs/case-1.json")
    labels = version.files.get(path="labels/test.json")
    metadata = version.files.get(path="metadata/cases.csv")
    for role, user in people.items():
        sees = role in SEES[policy]
        assert (package in access.visible_packages(user)) is sees, role
        if sees:
            assert access.readable_package(user, "retina") == package
        else:
            with pytest.raises(DataPackageRefusal) as refused:
                access.readable_package(user, "retina")
            assert refused.value.status == 404, role
        owner = role in ("owner", "co_owner")
        assert access.is_owner(user, package) is owner, role
        assert access.has_access(user, package) is (role in READS_INPUTS[policy]), role
        facts = access.reader(user)  # what lists show: the same rule, fetched once
        assert (facts.is_owner(package), facts.has_access(package)) == (owner, role in READS_INPUTS[policy]), role
        assert access.may_download(user, inputs) is (role in READS_INPUTS[policy]), role
        assert access.may_download(user, labels) is owner and access.may_download(user, metadata) is owner, role
        if sees:
            listed = set(publishing.files_seen(user, version).values_list("path", flat=True))
            assert listed == (set(FILES) if owner else set(INPUTS)), role


def test_staff_read_cards_but_are_not_owners(people, host, host_team, media):
    package = make_package(host, host_team, "hosts_only")
    publish(host, package)
    staff = people["staff"]
    assert access.readable_package(staff, "retina") == package
    with pytest.raises(DataPackageRefusal) as refused:
        access.managed_package(staff, "retina")
    assert refused.value.status == 403
    with pytest.raises(DataPackageRefusal) as refused:
        access.readable_file(staff, package, 1, "inputs/case-1.json")
    assert refused.value.status == 403
    with pytest.raises(DataPackageRefusal) as refused:
        access.readable_file(staff, package, 1, "labels/test.json")
    assert refused.value.status == 404


def test_managed_package_is_403_to_readers_and_404_to_the_rest(people, host, host_team, media):
    make_package(host, host_team, "on_request")
    make_package(host, host_team, "hosts_only", slug="secret")
    assert access.managed_package(people["co_owner"], "retina").slug == "retina"
    for slug, role, status in [("retina", "user", 403), ("secret", "user", 404), ("nope", "owner", 404)]:
        with pytest.raises(DataPackageRefusal) as refused:
            access.managed_package(people[role], slug)
        assert refused.value.status == status, (slug, role)


def test_an_approved_user_reads_the_inputs_of_every_version_never_labels_or_metadata(people, host, host_team, media):
    package = make_package(host, host_team)
    publish(host, package)
    publish(host, package, {**FILES, "inputs/case-2.json": b"{}"})
    reader = people["user"]
    with pytest.raises(DataPackageRefusal, match="request access") as refused:
        access.readable_file(reader, package, 1, "inputs/case-1.json")
    assert refused.value.status == 403
    approve(host, package, reader)
    for number in (1, 2):
        assert access.readable_file(reader, package, number, "inputs/case-1.json").role == "inputs"
        for path in ("labels/test.json", "metadata/cases.csv", "inputs/missing.json"):
            with pytest.raises(DataPackageRefusal) as refused:
                access.readable_file(reader, package, number, path)
            assert refused.value.status == 404, path
    with pytest.raises(DataPackageRefusal) as refused:
        access.readable_file(reader, package, 3, "inputs/case-1.json")
    assert refused.value.status == 404
    assert access.readable_file(host, package, 1, "labels/test.json").role == "labels"


# --- packages and cards ----------------------------------------------------------------------------------


def test_create_package_with_its_card(people, host, host_team):
    package = make_package(host, host_team)
    assert (package.host_team, package.access, package.created_by) == (host_team, "on_request", host)
    assert {name: getattr(package, name) for name in CARD} == CARD
    assert not package.versions.exists()


@pytest.mark.parametrize(
    ("change", "status", "match"),
    [
        ({"slug": "Retina"}, 400, "slug"),
        ({"slug": "-retina"}, 400, "slug"),
        ({"slug": "a" * 101}, 400, "at most 100"),
        ({"slug": "re/tina"}, 400, "slug"),
        ({"slug": "taken"}, 409, "exists already"),
        ({"title": "  "}, 400, "needs a title"),
        ({"title": "x" * 201}, 400, "at most 200"),
        ({"title": "a\x00b"}, 400, "control character"),
        ({"access": "everyone"}, 400, "access must be one of"),
        ({"card": {"sauce": "x"}}, 400, "unknown card fields: sauce"),
        ({"card": {"licence": "x" * 201}}, 400, "licence is 201 characters"),
        ({"card": {"source": 3}}, 400, "source must be text"),
        ({"card": ["source"]}, 400, "must be an object"),
    ],
)
def test_create_package_refuses_bad_fields(people, host, host_team, change, status, match):
    publishing.create_package(host, host_team.pk, "taken", "Taken", "public", {})
    args = {"slug": "retina", "title": "Retina", "access": "public", "card": {}, **change}
    with pytest.raises(DataPackageRefusal, match=match) as refused:
        publishing.create_package(host, host_team.pk, **args)
    assert refused.value.status == status
    assert DataPackage.objects.count() == 1


def test_only_members_of_the_host_team_create_its_packages(people, host_team):
    for role, status in [("other_host", 403), ("user", 403), ("staff", 403), ("anonymous", 401)]:
        with pytest.raises(DataPackageRefusal) as refused:
            publishing.create_package(people[role], host_team.pk, "retina", "Retina", "public", {})
        assert refused.value.status == status, role
    with pytest.raises(DataPackageRefusal) as refused:
        publishing.create_package(people["owner"], 999_999, "retina", "Retina", "public", {})
    assert refused.value.status == 403
    for role, status in [("user", 403), ("anonymous", 401)]:
        with pytest.raises(DataPackageRefusal) as refused:
            publishing.create_package(people[role], None, "retina", "Retina", "public", {})
        assert refused.value.status == status, role
    assert not DataPackage.objects.exists()
    assert publishing.create_package(people["owner"], None, "retina", "Retina", "public", {}).host_team == host_team


def test_update_package_changes_card_title_and_policy_for_owners_only(people, host, host_team):
    package = make_package(host, host_team)
    changed = publishing.update_package(
        people["co_owner"], package, {"title": "New", "access": "public", "card": {"licence": "CC0"}, "contact": "x"}
    )
    changed.refresh_from_db()
    assert (changed.title, changed.access, changed.licence, changed.contact, changed.slug) == (
        "New", "public", "CC0", "x", "retina",
    )  # fmt: skip
    assert changed.source == CARD["source"]
    with pytest.raises(DataPackageRefusal, match="unknown card fields: slug"):
        publishing.update_package(host, package, {"slug": "other"})
    for role in ("user", "staff", "other_host", "anonymous"):
        with pytest.raises(DataPackageRefusal) as refused:
            publishing.update_package(people[role], package, {"title": "Mine"})
        assert refused.value.status == 403, role
    package.refresh_from_db()
    assert package.title == "New"


# --- versions --------------------------------------------------------------------------------------------


def test_publish_version_stores_files_by_role_and_hash(people, host, host_team, media):
    package = make_package(host, host_team)
    version = publish(host, package, notes="first release")
    assert (version.number, version.notes, version.created_by) == (1, "first release", host)
    files = {f.path: f for f in version.files.all()}
    assert set(files) == set(FILES)
    assert {p: f.role for p, f in files.items()} == {
        "inputs/case-1.json": "inputs", "inputs/images/case-1.png": "inputs",
        "labels/test.json": "labels", "metadata/cases.csv": "metadata",
    }  # fmt: skip
    import hashlib

    for path, f in files.items():
        assert (f.sha256, f.size) == (hashlib.sha256(FILES[path]).hexdigest(), len(FILES[path]))
        assert f.file.name.startswith(f"data-packages/{f.sha256}/")
        with default_storage.open(f.file.name, "rb") as fh:
            assert fh.read() == FILES[path]


def test_the_same_file_in_two_versions_is_stored_once(people, host, host_team, media):
    package = make_package(host, host_team)
    first = publish(host, package)
    before = stored_files(media)
    second = publish(host, package, {**FILES, "labels/test.json": b'{"case-1": "dog"}'})
    assert second.number == 2
    added = stored_files(media) - before
    assert len(added) == 1 and added.pop().startswith("data-packages/")
    same = first.files.get(path="inputs/case-1.json").file.name
    assert second.files.get(path="inputs/case-1.json").file.name == same
    assert first.files.get(path="labels/test.json").file.name != second.files.get(path="labels/test.json").file.name
    with pytest.raises(DataPackageRefusal, match="version 2 already") as refused:
        publish(host, package, {**FILES, "labels/test.json": b'{"case-1": "dog"}'})
    assert refused.value.status == 409
    assert package.versions.count() == 2


def test_versions_are_immutable(people, host, host_team, media):
    package = make_package(host, host_team)
    version = publish(host, package)
    stored = version.files.get(path="labels/test.json")
    for field, value in [("sha256", "0" * 64), ("path", "labels/other.json"), ("role", "inputs"), ("size", 1)]:
        changed = DataPackageFile.objects.get(pk=stored.pk)
        setattr(changed, field, value)
        with pytest.raises(ValueError, match="immutable"):
            changed.save()
    stored.refresh_from_db()
    assert stored.role == "labels" and stored.path == "labels/test.json"
    assert publishing.versions_seen(host, package).first().number == 1


def test_only_owners_publish_versions(people, host, host_team, media):
    package = make_package(host, host_team, "public")
    for role in ("user", "staff", "other_host", "anonymous"):
        with pytest.raises(DataPackageRefusal) as refused:
            publish(people[role], package)
        assert refused.value.status == 403, role
    assert publish(people["co_owner"], package).number == 1
    assert stored_files(media)


@pytest.mark.parametrize(
    ("archive", "status", "match"),
    [
        (b"", 400, "empty"),
        (b"not a zip at all", 400, "not a readable zip"),
        (package_zip({}), 400, "holds no files"),
        (package_zip({}, folders=True), 400, "holds no files"),
        (named_zip("/etc/passwd"), 400, "absolute path"),
        (named_zip("C:/windows/evil.json"), 400, "absolute path"),
        (named_zip("inputs/../../evil.json"), 400, r"outside the archive \('..'\)"),
        (named_zip("inputs\\..\\..\\evil.json"), 400, "outside the archive"),
        (named_zip("inputs/a\x01.json"), 400, "holds a control character"),
        (named_zip("inputs/a\nb.json"), 400, "holds a control character"),
        (named_zip("readme.txt"), 400, "'readme.txt' is outside inputs/, labels/, metadata/"),
        (named_zip("inputs/a.json", "answers/key.json"), 400, "'answers/key.json' is outside"),
        (named_zip("inputs/a.json", "inputs/a.json"), 400, "appears twice"),
        (named_zip("inputs/a.json", "inputs/a.json/b.json"), 400, "both a file and a folder"),
        (named_zip("inputs/" + "a" * 300), 400, "at most 300"),
        (duplicate_zip(), 400, "appears twice"),
        (symlink_zip(), 400, "symbolic link"),
        (symlink_zip(stat.S_IFIFO), 400, "'inputs/passwd' is not a regular file"),
        (bomb_zip(), 400, "zip bomb"),
        (patched_entry(package_zip(), next(iter(LABELS)), flag=1), 400, "is encrypted"),
        (patched_entry(package_zip(), next(iter(INPUTS)), method=9), 400, "uses compression method 9"),
    ],
    ids=[
        "empty-file", "not-a-zip", "no-entries", "only-folders", "absolute", "drive-letter", "dot-dot",
        "backslash-dot-dot", "control-char", "newline", "root-file", "unknown-folder", "duplicate", "file-and-folder",
        "long-name", "duplicate-after-cleaning", "symlink", "fifo", "zip-bomb", "encrypted", "deflate64",
    ],
)  # fmt: skip
def test_hostile_archives_are_refused_and_nothing_is_stored(people, host, host_team, media, archive, status, match):
    package = make_package(host, host_team)
    with pytest.raises(DataPackageRefusal, match=match) as refused:
        publishing.publish_version(host, package, io.BytesIO(archive))
    assert (refused.value.status, refused.value.code) == (status, "archive_refused")
    assert not package.versions.exists() and not stored_files(media)


def test_the_total_and_entry_limits_are_settings(people, host, host_team, media, settings):
    package = make_package(host, host_team)
    settings.DATA_PACKAGE_MAX_BYTES = 20
    with pytest.raises(DataPackageRefusal, match="the limit is 20") as refused:
        publish(host, package)  # the archive itself
    assert refused.value.status == 413
    settings.DATA_PACKAGE_MAX_BYTES = len(package_zip())
    with pytest.raises(DataPackageRefusal, match=f"more than the limit of {len(package_zip())}") as refused:
        publish(host, package, {"inputs/big.bin": bytes(len(package_zip()) + 1)})  # what it unpacks to
    assert refused.value.status == 413
    settings.DATA_PACKAGE_MAX_BYTES = 10_000
    settings.DATA_PACKAGE_MAX_ENTRIES = 3
    with pytest.raises(DataPackageRefusal, match="holds 4 entries, more than 3"):
        publish(host, package)
    assert not stored_files(media)
    settings.DATA_PACKAGE_MAX_ENTRIES = 4
    assert publish(host, package).files.count() == 4


def test_an_entry_that_unpacks_to_more_than_it_declares_is_refused(people, host, host_team, media):
    data = bytearray(package_zip({"inputs/a.bin": b"x" * 1000}))
    # lower the declared size in both headers: zipfile stops at the declared size and then the CRC fails
    for header in (b"PK\x03\x04", b"PK\x01\x02"):
        at = data.index(header)
        offset = at + (22 if header == b"PK\x03\x04" else 24)
        data[offset : offset + 4] = (10).to_bytes(4, "little")
    package = make_package(host, host_team)
    with pytest.raises(DataPackageRefusal, match="cannot be read") as refused:
        publishing.publish_version(host, package, io.BytesIO(bytes(data)))
    assert refused.value.status == 400
    assert not stored_files(media)


def test_folder_entries_and_macos_metadata_are_skipped(people, host, host_team, media):
    package = make_package(host, host_team)
    files = {**INPUTS, **LABELS, "__MACOSX/inputs/._case-1.json": b"junk", "inputs/.DS_Store": b"junk"}
    version = publishing.publish_version(host, package, io.BytesIO(package_zip(files, folders=True)))
    assert set(version.files.values_list("path", flat=True)) == set(INPUTS) | set(LABELS)


def test_notes_are_checked_before_anything_is_stored(people, host, host_team, media):
    package = make_package(host, host_team)
    with pytest.raises(DataPackageRefusal, match="notes is 20001 characters"):
        publish(host, package, notes="x" * 20_001)
    assert not stored_files(media)


# --- access requests -------------------------------------------------------------------------------------


def test_request_approve_revoke_and_ask_again(people, host, host_team, media):
    package = make_package(host, host_team)
    reader = people["user"]
    req = access_requests.request_access(reader, package, "  to benchmark my model  ")
    assert (req.status, req.reason) == ("pending", "to benchmark my model")
    with pytest.raises(DataPackageRefusal, match="asked already; your request is pending") as refused:
        access_requests.request_access(reader, package, "again")
    assert refused.value.status == 409
    denied = access_requests.decide(people["co_owner"], package, req.pk, False, "who are you?")
    assert (denied.status, denied.decided_by, denied.decision_note) == ("denied", people["co_owner"], "who are you?")
    assert not access.has_access(reader, package)
    again = access_requests.request_access(reader, package, "I am a researcher at X")
    assert (again.pk, again.status, again.decided_by, again.decision_note) == (req.pk, "pending", None, "")
    approved = access_requests.decide(host, package, req.pk, True)
    assert approved.status == "approved" and access.has_access(reader, package)
    with pytest.raises(DataPackageRefusal, match="approved already"):
        access_requests.decide(host, package, req.pk, True)
    revoked = access_requests.revoke(host, package, req.pk, "study ended")
    assert revoked.status == "revoked" and not access.has_access(reader, package)
    with pytest.raises(DataPackageRefusal, match="revoked already"):
        access_requests.decide(host, package, req.pk, False)
    assert access_requests.decide(host, package, req.pk, True).status == "approved"
    assert access_requests.decide(host, package, req.pk, False, "refused after all").status == "revoked"
    with pytest.raises(DataPackageRefusal, match="only an approved request can be revoked") as refused:
        access_requests.revoke(host, package, req.pk)
    assert refused.value.status == 409
    assert AccessRequest.objects.count() == 1


def test_requests_are_refused_where_there_is_nothing_to_ask(people, host, host_team):
    on_request = make_package(host, host_team)
    public = make_package(host, host_team, "public", slug="open")
    hidden = make_package(host, host_team, "hosts_only", slug="hidden")
    cases = [
        (people["owner"], on_request, "reason", 400, "owns this package"),
        (people["user"], public, "reason", 400, "is public"),
        (people["staff"], hidden, "reason", 403, "takes no requests"),
        (people["anonymous"], on_request, "reason", 401, "sign in"),
        (people["user"], on_request, "", 400, "say what you will use"),
        (people["user"], on_request, "x" * 5001, 400, "at most 5000"),
        (people["user"], on_request, "a\x00", 400, "control character"),
    ]
    for user, package, reason, status, match in cases:
        with pytest.raises(DataPackageRefusal, match=match) as refused:
            access_requests.request_access(user, package, reason)
        assert refused.value.status == status, match
    assert not AccessRequest.objects.exists()


def test_only_owners_decide_and_see_every_request(people, host, host_team):
    package = make_package(host, host_team)
    other = make_package(host, host_team, slug="other")
    mine = access_requests.request_access(people["user"], package, "research")
    theirs = access_requests.request_access(people["other_host"], package, "research too")
    for role in ("user", "other_host", "staff", "anonymous"):
        for act in (
            lambda u: access_requests.decide(u, package, mine.pk, True),
            lambda u: access_requests.revoke(u, package, mine.pk),
        ):
            with pytest.raises(DataPackageRefusal) as refused:
                act(people[role])
            assert refused.value.status == 403, role
    with pytest.raises(DataPackageRefusal) as refused:
        access_requests.decide(host, other, mine.pk, True)  # the request of another package
    assert refused.value.status == 404
    assert set(access_requests.requests_seen(host, package)) == {mine, theirs}
    assert list(access_requests.requests_seen(people["user"], package)) == [mine]
    assert not access_requests.requests_seen(people["staff"], package).exists()
    assert not access_requests.requests_seen(people["anonymous"], package).exists()
    mine.refresh_from_db()
    assert mine.status == "pending"


# --- downloads and the log -------------------------------------------------------------------------------


def test_every_download_writes_the_access_log_after_the_rule(people, host, host_team, media):
    package = make_package(host, host_team)
    publish(host, package)
    reader = people["user"]
    approve(host, package, reader)
    file = access.readable_file(reader, package, 1, "inputs/case-1.json")
    for via in ("api", "web", "cli"):
        got = downloads.download(reader, file, via=via, client_address="198.51.100.7")
        assert got.url is None and got.filename == "case-1.json" and got.size == len(FILES[file.path])
        with got.stream as fh:
            assert fh.read() == FILES["inputs/case-1.json"]
    labels = DataPackageFile.objects.get(version__package=package, path="labels/test.json")
    with pytest.raises(DataPackageRefusal) as refused:
        downloads.download(reader, labels, via="api", client_address="198.51.100.7")
    assert refused.value.status == 404
    with pytest.raises(DataPackageRefusal) as refused:
        downloads.download(people["other_host"], file, via="api", client_address="203.0.113.1")
    assert refused.value.status == 403
    got = downloads.download(host, labels, via="web", client_address="192.0.2.1")
    got.stream.close()
    log = list(downloads.access_log(host, package))
    assert [(r.user, r.file.path, r.via, r.client_address) for r in log] == [
        (host, "labels/test.json", "web", "192.0.2.1"),
        (reader, "inputs/case-1.json", "cli", "198.51.100.7"),
        (reader, "inputs/case-1.json", "web", "198.51.100.7"),
        (reader, "inputs/case-1.json", "api", "198.51.100.7"),
    ]
    with pytest.raises(ValueError, match="via is one of"):
        downloads.download(reader, file, via="ftp", client_address="")
    assert DownloadRecord.objects.count() == 4


def test_an_anonymous_download_of_a_public_package_is_logged_without_a_user(people, host, host_team, media):
    package = make_package(host, host_team, "public")
    publish(host, package)
    file = access.readable_file(people["anonymous"], package, 1, "inputs/case-1.json")
    downloads.download(people["anonymous"], file, via="api", client_address="x" * 100).stream.close()
    record = DownloadRecord.objects.get()
    assert record.user is None and record.client_address == "x" * 64


def test_the_access_log_is_the_owners_alone(people, host, host_team):
    package = make_package(host, host_team, "public")
    assert not downloads.access_log(people["co_owner"], package).exists()
    for role in ("user", "staff", "other_host", "anonymous"):
        with pytest.raises(DataPackageRefusal) as refused:
            downloads.access_log(people[role], package)
        assert refused.value.status == 403, role


def test_a_missing_stored_file_is_410_and_not_logged(people, host, host_team, media):
    package = make_package(host, host_team, "public")
    file = publish(host, package).files.get(path="inputs/case-1.json")
    default_storage.delete(file.file.name)
    with pytest.raises(DataPackageRefusal) as refused:
        downloads.download(host, file, via="api", client_address="")
    assert refused.value.status == 410
    assert not DownloadRecord.objects.exists()


def test_with_an_object_store_the_download_is_a_presigned_url(people, host, host_team, media, monkeypatch):
    package = make_package(host, host_team, "public")
    file = publish(host, package).files.get(path="inputs/case-1.json")
    seen = {}

    def presigned(name, filename="", content_type="", *, attachment=True):
        seen.update(name=name, filename=filename, attachment=attachment)
        return "https://store.example/signed"

    monkeypatch.setattr(downloads, "presigned_get", presigned)
    got = downloads.download(people["user"], file, via="cli", client_address="")
    assert (got.url, got.stream) == ("https://store.example/signed", None)
    assert seen == {"name": file.file.name, "filename": "case-1.json", "attachment": True}
    assert DownloadRecord.objects.get().via == "cli"
