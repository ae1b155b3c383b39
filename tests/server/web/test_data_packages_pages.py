"""The data package pages (issue 16 item 2) for every role: a host creates a package and publishes a version
from the web; a participant requests access, the host approves, the participant downloads the inputs (never
the labels: not listed, 404 by URL) and the download shows in the host's access log; deny, revoke, refusals
on the page; anonymous visitors, outsiders and staff."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from assay.server.data_packages.models import AccessRequest, DataPackage, DownloadRecord
from assay.server.data_packages.services import access_requests, publishing
from tests.factories import make_user, upload
from tests.server.data_packages.archives import INPUTS, LABELS, METADATA, package_zip

pytestmark = pytest.mark.django_db

CARD = {"source": "Two eye clinics.", "population": "Adults with diabetes.", "licence": "CC BY-NC 4.0"}
INPUT, LABEL, META = "inputs/case-1.json", "labels/test.json", "metadata/cases.csv"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(client: Client, slug: str = "dr-test") -> str:
    answer = client.get(f"/data/{slug}/")
    assert answer.status_code == 200, answer.status_code
    return answer.content.decode()


@pytest.fixture
def package(host, host_team, media) -> DataPackage:
    """An on-request package of the host team with one version (inputs, labels, metadata)."""
    pkg = publishing.create_package(host, host_team.pk, "dr-test", "DR test set", "on_request", CARD)
    import io

    publishing.publish_version(host, pkg, io.BytesIO(package_zip()), "first")
    return pkg


def errors(answer) -> str:
    """The error messages a followed answer shows (the service's refusals, on the page)."""
    return " ".join(re.findall(r'<li class="error">(.*?)</li>', answer.content.decode(), re.S))


def file_url(path: str, number: int = 1, slug: str = "dr-test") -> str:
    return f"/data/{slug}/versions/{number}/files/{path}"


def test_a_host_creates_a_package_and_publishes_versions_from_the_web(host, host_team, media):
    client = signed_in(host)
    assert "New data package" in client.get("/data/").content.decode()
    form = {"slug": "dr-test", "title": "DR test set", "host_team": host_team.pk, "access": "on_request", **CARD}
    answer = client.post("/data/", form)
    assert answer.status_code == 302 and answer["Location"] == "/data/dr-test/"
    pkg = DataPackage.objects.get(slug="dr-test")
    assert (pkg.host_team, pkg.access, pkg.licence) == (host_team, "on_request", "CC BY-NC 4.0")
    answer = client.post("/data/dr-test/versions", {"archive": upload(package_zip(), "v1.zip"), "notes": "first"})
    assert answer.status_code == 302
    html = page(client)
    assert "Version 1" in html and INPUT in html and LABEL in html and META in html  # the owners see every file
    assert "Publish a new version" in html and "Access log" in html and "Two eye clinics." in html
    again = client.post("/data/dr-test/versions", {"archive": upload(package_zip(), "v1.zip")}, follow=True)
    assert "these files are version 1 already" in again.content.decode()  # the service's refusal, on the page
    two = package_zip({**INPUTS, "labels/test.json": b'{"case-1": "dog"}'})
    client.post("/data/dr-test/versions", {"archive": upload(two, "v2.zip"), "notes": "relabelled"})
    assert list(pkg.versions.values_list("number", flat=True)) == [2, 1]
    bad = client.post("/data/dr-test/versions", {"archive": upload(b"not a zip", "v3.zip")}, follow=True)
    assert "not a readable zip" in bad.content.decode()
    edited = client.post("/data/dr-test/edit", {"title": "DR test", "access": "public", "licence": "CC0"}, follow=True)
    assert "saved" in edited.content.decode()
    pkg.refresh_from_db()
    assert (pkg.title, pkg.access, pkg.licence, pkg.source) == ("DR test", "public", "CC0", "")
    refused = client.post("/data/", {**form, "slug": "Bad Slug!"})
    assert refused.status_code == 400 and "slug" in refused.content.decode()
    taken = client.post("/data/", form)
    assert taken.status_code == 409 and "exists already" in taken.content.decode()


def test_request_approve_download_inputs_never_labels_and_the_log(package, host, participant):
    alice, owner = signed_in(participant), signed_in(host)
    html = page(alice)
    assert "Request access" in html and INPUT in html  # inputs listed, not yet downloadable
    assert LABEL not in html and META not in html and "Access log" not in html and "Publish a new version" not in html
    assert f'href="{file_url(INPUT)}"' not in html
    assert alice.get(file_url(INPUT)).status_code == 403  # says how to get access
    assert alice.get(file_url(LABEL)).status_code == 404

    answer = alice.post("/data/dr-test/access", {"reason": "Validating a grader."}, follow=True)
    assert "Access requested" in answer.content.decode() and "Pending" in answer.content.decode()
    assert "Request access" not in answer.content.decode()  # one request: no second form while it is pending
    req = AccessRequest.objects.get(package=package, user=participant)
    html = page(owner)
    assert "Validating a grader." in html and f"/data/dr-test/access/{req.pk}/approve" in html

    owner.post(f"/data/dr-test/access/{req.pk}/approve", {"note": "ok"})
    html = page(alice)
    assert "Approved" in html and f'href="{file_url(INPUT)}"' in html and LABEL not in html
    answer = alice.get(file_url(INPUT))
    assert answer.status_code == 200 and b"".join(answer.streaming_content) == INPUTS[INPUT]
    assert answer["Content-Disposition"].startswith("attachment")
    for hidden in (LABEL, META):
        assert alice.get(file_url(hidden)).status_code == 404  # never the labels, approved or not
    record = DownloadRecord.objects.get()
    assert (record.user, record.file.path, record.via) == (participant, INPUT, "web")
    html = page(owner)
    assert "alice" in html and f"v1 {INPUT}" in html  # who, what (and when) in the access log

    owner.post(f"/data/dr-test/access/{req.pk}/revoke")
    assert alice.get(file_url(INPUT)).status_code == 403
    assert DownloadRecord.objects.count() == 1  # a refused download writes no log row
    assert "Revoked" in page(alice) and "Request access" in page(alice)  # may ask again


def test_deny_and_decisions_the_rules_refuse(package, host, participant):
    alice, owner = signed_in(participant), signed_in(host)
    req = access_requests.request_access(participant, package, "Research.")
    answer = owner.post(f"/data/dr-test/access/{req.pk}/deny", {"note": "Not for this use."}, follow=True)
    assert "denied" in answer.content.decode()
    assert "Not for this use." in page(alice) and "Denied" in page(alice)
    again = owner.post(f"/data/dr-test/access/{req.pk}/deny", follow=True)
    assert "this request is denied" in errors(again)
    odd = owner.post(f"/data/dr-test/access/{req.pk}/delete", follow=True)
    assert "the action is one of" in errors(odd)
    assert "no such access request" in errors(owner.post("/data/dr-test/access/999999/approve", follow=True))
    assert alice.post(f"/data/dr-test/access/{req.pk}/approve").status_code == 403  # only the owners decide
    assert AccessRequest.objects.get(pk=req.pk).status == "denied"
    empty = alice.post("/data/dr-test/access", {"reason": "  "}, follow=True)
    assert "reason" in errors(empty)


def test_what_each_role_gets(package, host, participant, admin_user):
    outsider, staff = signed_in(make_user("carol")), signed_in(admin_user)
    anonymous = Client()
    listing = anonymous.get("/data/")
    assert listing.status_code == 200 and "dr-test" not in listing.content.decode()  # on request: signed-in only
    answer = anonymous.get("/data/dr-test/")
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")  # sign in first
    assert anonymous.get("/data/nope/").status_code == 302  # as a missing slug answers
    assert anonymous.get(file_url(INPUT)).status_code == 302
    assert anonymous.post("/data/dr-test/access", {"reason": "x"}).status_code == 302
    for client in (outsider, staff):
        assert "dr-test" in client.get("/data/").content.decode()
        html = page(client)
        assert INPUT in html and LABEL not in html and "Access log" not in html and "New data package" not in html
        assert client.get(file_url(INPUT)).status_code == 403
        assert client.get(file_url(LABEL)).status_code == 404
        for path in ("edit", "versions", "access/1/approve"):
            assert client.post(f"/data/dr-test/{path}").status_code == 403
    assert signed_in(make_user("dave")).get("/data/nope/").status_code == 404
    assert "New data package" not in signed_in(participant).get("/data/").content.decode()  # no host team
    assert DownloadRecord.objects.count() == 0


def test_hosts_only_and_public_packages(host, host_team, participant, media):
    import io

    hidden = publishing.create_package(host, host_team.pk, "internal", "Internal", "hosts_only", {})
    publishing.publish_version(host, hidden, io.BytesIO(package_zip({**INPUTS, **LABELS, **METADATA})))
    alice = signed_in(participant)
    assert alice.get("/data/internal/").status_code == 404  # as a missing slug
    assert alice.get(file_url(INPUT, slug="internal")).status_code == 404
    assert "internal" not in alice.get("/data/").content.decode()
    opened = publishing.create_package(host, host_team.pk, "open-set", "Open", "public", {})
    publishing.publish_version(host, opened, io.BytesIO(package_zip()))
    anonymous = Client()
    assert "open-set" in anonymous.get("/data/").content.decode()
    html = page(anonymous, "open-set")
    assert "Request access" not in html and LABEL not in html
    answer = anonymous.get(file_url(INPUT, slug="open-set"))
    assert answer.status_code == 200 and b"".join(answer.streaming_content) == INPUTS[INPUT]
    assert anonymous.get(file_url(LABEL, slug="open-set")).status_code == 404
    assert DownloadRecord.objects.get().user is None  # an anonymous download is logged too
    assert "public" in errors(alice.post("/data/open-set/access", {"reason": "x"}, follow=True))
    assert not AccessRequest.objects.exists()  # a public package takes no requests (the refusal is on the page)


def test_the_site_navigation_links_the_data_packages(client):
    assert 'href="/data/"' in client.get("/").content.decode()


@pytest.mark.parametrize(
    ("url", "form", "said"),
    [
        ("/data/dr-test/access", {"reason": "nul \x00 byte"}, "control character"),
        ("/data/dr-test/access", {"reason": "x" * 5001}, "at most 5000"),
        ("/data/dr-test/edit", {"title": "T", "access": "everyone"}, "access must be one of"),
        ("/data/dr-test/edit", {"title": "T", "access": "public", "source": "y" * 20001}, "at most 20000"),
        ("/data/dr-test/edit", {"title": "", "access": "public"}, "needs a title"),
        ("/data/dr-test/versions", {"notes": "no archive"}, "needs its archive"),
        ("/data/", {"slug": "-bad-", "title": "T", "access": "public"}, "slug"),
        ("/data/", {"slug": "ok", "title": "T", "access": "public", "host_team": "999999"}, "not a member"),
    ],
)
def test_hostile_forms_come_back_with_why(package, host, participant, url, form, said):
    client = signed_in(participant if url.endswith("/access") else host)
    answer = client.post(url, form, follow=True)
    assert answer.status_code in (200, 400, 403) and said in errors(answer), errors(answer)


def test_hostile_paths_and_an_oversized_archive(package, host, participant, settings):
    owner = signed_in(host)
    for path in ("inputs/../labels/test.json", "labels/../inputs/case-1.json", "/etc/passwd", "inputs/nope.json"):
        assert owner.get(file_url(path)).status_code == 404, path
    assert owner.get(file_url(INPUT, number=99)).status_code == 404
    assert owner.get("/data/..%2Fetc/").status_code == 404
    settings.DATA_PACKAGE_MAX_BYTES = 64
    big = package_zip({"inputs/big.bin": b"x" * 1000})
    answer = owner.post("/data/dr-test/versions", {"archive": upload(big, "big.zip")}, follow=True)
    assert "the limit is 64" in errors(answer) or "more than the limit of 64" in errors(answer), errors(answer)
    assert package.versions.count() == 1
    assert DownloadRecord.objects.count() == 0


def test_the_page_names_the_phases_that_pin_it_when_the_reader_may_see_them(package, host, participant, demo_challenge):
    from assay.server.challenges.models import Challenge, ChallengePhase

    phase = demo_challenge.phases.order_by("pk").first()
    ChallengePhase.objects.filter(pk=phase.pk).update(data_package_version=package.versions.get())
    alice = signed_in(participant)
    html = page(alice)
    assert "Phases that use it" in html and f"{demo_challenge.title}</a> · {phase.name}: version 1" in html
    Challenge.objects.filter(pk=demo_challenge.pk).update(published=False)
    assert demo_challenge.title not in page(alice)  # an unlisted challenge is not named to others
    assert demo_challenge.title in page(signed_in(host))  # its hosts see it


def _card_section(html: str) -> str:
    found = re.search(r'<section class="panel" aria-labelledby="card-title">(.*?)</section>', html, re.S)
    return found.group(1) if found else ""


def test_the_card_shows_only_its_filled_fields_and_owners_of_an_empty_one_a_hint(package, host, participant):
    card = _card_section(page(signed_in(participant)))
    assert "<dt>Source</dt>" in card and "Two eye clinics." in card and "<dt>Licence</dt>" in card
    assert "<dt>Summary</dt>" not in card and "<dt>Contact</dt>" not in card and "—" not in card  # no empty rows
    assert card.count("<dt>") == len(CARD)
    DataPackage.objects.filter(pk=package.pk).update(source="", population="", licence="")
    reader = page(signed_in(participant))
    assert 'id="card-title"' not in reader and "edit the card" not in reader  # nothing to show a reader
    owner = _card_section(page(signed_in(host)))
    assert 'id="card-empty"' in owner and 'href="#edit-card">edit the card' in owner and "<dt>" not in owner
