"""Generated requests over every EvalAI-compatible route (every /api/ path outside /api/v1), per role.

Issue 12: a fuzz run over the EvalAI paths finds no 5xx and no shape mismatch. /api/v1 is fuzzed from its OpenAPI
schema (test_schemathesis.py); these paths have no schema, so the requests are drawn here from what each view
reads: path parameters (real ids of this world and another's, zero, negative, 64-bit overflows, text), query
parameters and bodies (JSON objects with the view's field names, arrays, scalars, garbage, forms, multipart with
odd file names: empty, huge, NUL). Every answer must be below 500, an error must be JSON in EvalAI's shape
(``{"error": "…"}``, api/errors.py), and no answer to anyone but a host (or the queue's worker, whose jobs they
are) may hold another team's file name or a host-only split's scores.

Bounded for CI (tests/api runs on SQLite and PostgreSQL): derandomized, a few examples per route and role.
"""

from __future__ import annotations

import io
import json
import os
import re
from urllib.parse import quote, urlencode

import pytest
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import finish, upload

from .authz_world import World, build_world
from .routes import url_routes

pytestmark = pytest.mark.django_db

#: Examples per (route, method) and role: 47 route-methods × 4 roles × 12 ≈ 2,300 requests, ~30 s CPU on SQLite.
#: ASSAY_FUZZ_EXAMPLES=200 searches deeper by hand (same derandomized start, more examples).
EXAMPLES = int(os.environ.get("ASSAY_FUZZ_EXAMPLES", "12"))
#: The roles of interest: who asks (authz_world's clients).
FUZZ_ROLES = ("anonymous", "participant_a", "host", "worker")
#: Roles that may see every team's files and every split: the hosts, and the queue's worker (it evaluates them).
SEES_ALL = {"host", "worker"}

#: What each view reads (grep request.data / query_params / FILES in api/evalai/): body and query field names.
SUBMISSION_FIELDS = ("is_public", "submission_metadata", "method_name", "method_description", "project_url",
                     "publication_url")  # fmt: skip
BODY_FIELDS: dict[str, tuple[str, ...]] = {
    "LoginView": ("username", "password"),
    "ParticipantTeamsView": ("team_name", "team_url"),
    "HostTeamsView": ("team_name", "team_url"),
    "PhaseSubmissionsView": ("input_file", *SUBMISSION_FIELDS),
    "SubmissionVisibilityView": ("is_public", "is_baseline"),
    "SubmissionMetaView": ("status", "is_baseline", "is_flagged", "is_verified_by_host", "is_public"),
    "PresignedSubmissionView": ("num_file_chunks", "file_name", *SUBMISSION_FIELDS),
    "UpdateSubmissionView": ("submission", "submission_status", "job_name", "result", "metadata", "stdout", "stderr"),
    "PartialUpdateView": ("submission", "submission_status", "job_name", "result", "metadata", "stdout", "stderr"),
    "GithubBundleView": ("zip_configuration", "GITHUB_REPOSITORY", "GITHUB_BRANCH_NAME", "GITHUB_BRANCH"),
    "ValidateConfigView": ("zip_configuration", "GITHUB_REPOSITORY", "GITHUB_BRANCH_NAME", "GITHUB_BRANCH"),
}
FILE_FIELDS = {"input_file", "zip_configuration"}
PAGES = ("page", "page_size")
QUERY_FIELDS: dict[str, tuple[str, ...]] = {
    "PhaseSubmissionsView": ("participant_team__team_name", *PAGES),
    "SubmissionFileView": ("bucket", "key"),
    "LeaderboardView": ("order_by", *PAGES),
    "AllEntriesLeaderboardView": ("order_by", *PAGES),
}

ODD_IDS = [0, -1, 2**31, 2**63 - 1, 2**63, 10**30]
#: Text that survives being put in a URL or a form (lone surrogates cannot be encoded; JSON bodies carry them).
PLAIN = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
ODD_TEXT = ["", "true", "false", "None", "null", "\x00", "a\x00b", "x" * 3000, "http://x.example", "javascript:1",
            "finished", "running", "queued", "failed", "cancelled", "partially_evaluated", "-1", "1e400",
            "99999999999999999999", "../../etc/passwd", "=cmd()", "{}", "[]", '{"a": 1}']  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(ODD_TEXT),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
FILE_NAMES = st.one_of(
    st.sampled_from(
        [
            "",
            "a\x00.json",
            "x" * 1000 + ".json",
            "../../etc/passwd",
            "preds.json",
            "r\u00e9sum\u00e9.zip",
            "a\r\nb.json",
            '"q".json',
            ".",
            "/",
        ]
    ),  # fmt: skip
    PLAIN,
)
FILE_CONTENTS = st.one_of(st.binary(max_size=64), st.sampled_from([b'{"dev-a0": 1}', b"", b"PK\x03\x04", b"\x00" * 9]))

#: The secrets of the world (see the ``fuzz_world`` fixture): bob's file name and the host-only split's scores.
BOB_FILE = "bob-secret-predictions.json"
HIDDEN_SCORES = ("0.7236067977", "0.1618033988")


@pytest.fixture
def fuzz_world(world, users) -> tuple[World, dict[str, list]]:
    """authz_world's world plus the secrets: team B's finished, public test-phase submission (its file name is
    team B's), and both teams' scores on the test phase's host-only split; and a pool of real ids per path
    parameter (both challenges, both teams, every phase and split)."""
    from assay.server.api.evalai.shapes import phase_slug
    from assay.server.challenges.models import ChallengePhaseSplit
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from assay.server.submissions.services.tokens import remote_queue_name

    fw = build_world(world, users)
    challenge, other = world["challenge"], world["other_challenge"]
    test = challenge.phases.get(codename="test")
    splits = list(ChallengePhaseSplit.objects.filter(phase=test).select_related("dataset_split"))
    stored = []
    for user, name, hidden_score in (
        (users["other_participant"], BOB_FILE, HIDDEN_SCORES[0]),
        (users["participant"], "alice-test.json", HIDDEN_SCORES[1]),
    ):
        sub = submit(user, test, upload(b'{"test-a0": 1}'), name, SubmissionFields(is_public=True))
        scores = [
            {ps.dataset_split.codename: {"Accuracy": float(hidden_score) if ps.visibility == 1 else 0.5, "F1": 0.25}}
            for ps in splits
        ]
        sub = finish(sub, {"result": scores})
        assert sub.status == "finished", sub.failure_reason
        stored.append(sub)
    bob_sub = stored[0]
    assert any(ps.visibility == 1 for ps in splits)
    fw.objects["secrets"] = [BOB_FILE, bob_sub.input_file.name.rsplit("/", 1)[-1], *HIDDEN_SCORES]
    fw.objects["keys"] = [f.name for s in stored for f in (s.input_file, s.stdout_file, s.submission_result_file) if f]
    phases = list(challenge.phases.all()) + list(other.phases.all())
    pool = {
        "challenge_id": [challenge.pk, other.pk],
        "phase_id": [p.pk for p in phases],
        "slug": [phase_slug(p) for p in phases],
        "submission_id": [fw.values["submission_id"], fw.values["held_id"], *(s.pk for s in stored)],
        "team_id": [fw.values["team_id"], world["teams"]["other_participant"].pk, world["host_team"].pk],
        "phase_split_id": list(ChallengePhaseSplit.objects.filter(phase__in=phases).values_list("pk", flat=True)),
        "queue_name": [remote_queue_name(challenge), remote_queue_name(other)],
        "time": ["all", "past", "present", "future"],
        "approved": ["true", "false", "all"],
        "published": ["true", "false", "all"],
    }
    return fw, pool


def evalai_routes() -> list[tuple[str, str, str]]:
    """(pattern, method, view class name) of every EvalAI route, from the URL conf."""
    from django.urls import resolve

    from .routes import sample_path

    found = []
    for route in url_routes("api/"):
        if route.pattern.startswith("api/v1"):
            continue
        callback = resolve(sample_path(route.pattern)).func
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", callback)
        found += [(route.pattern, method, view.__name__) for method in route.methods]
    return found


def _path(pattern: str, values: dict) -> str:
    """The concrete path: each named group of the regex (or converter) replaced by its drawn value, quoted."""
    text = re.sub(r"\(\?P<(\w+)>[^()]*\)", lambda m: quote(str(values[m.group(1)]), safe=""), pattern)
    text = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: quote(str(values[m.group(1)]), safe=""), text)
    return "/" + text.replace("^", "").replace("/?$", "/").rstrip("$")


def _path_values(pattern: str, pool: dict[str, list]) -> st.SearchStrategy[dict]:
    names = re.findall(r"\(\?P<(\w+)>", pattern) + re.findall(r"<(?:\w+:)?(\w+)>", pattern)
    real = {n: st.sampled_from(pool.get(n) or ["x"]) for n in names}
    odd = {n: real[n] | st.sampled_from(ODD_IDS) | PLAIN for n in names}
    return st.fixed_dictionaries(real) | st.fixed_dictionaries(odd)  # half the time every id is real


def _field_values(name: str, pool: dict[str, list], keys: list[str]) -> st.SearchStrategy:
    """A value for a field: anything JSON, or one shaped after what the view expects of it."""
    shaped = {
        "submission": st.sampled_from(pool["submission_id"]),
        "num_file_chunks": st.integers(-3, 2**64),
        "key": st.sampled_from(keys),
        "bucket": st.just("assay"),
        "submission_metadata": st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
        "result": st.lists(st.dictionaries(st.sampled_from(["dev-a0", "test-a0", "x"]), JSON, max_size=2), max_size=2),
    }.get(name)
    return st.one_of(JSON, shaped) if shaped is not None else JSON


class RawFile(io.BytesIO):
    """A file part with any name at all (Django's own file classes refuse the odd ones a client may send)."""

    def __init__(self, content: bytes, name: str) -> None:
        super().__init__(content)
        self.name = name


def _form_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@st.composite
def requests(draw, pattern: str, method: str, view: str, pool: dict[str, list], keys: list[str]):
    """One request to ``pattern``: (path with query, body bytes or None, content type)."""
    path = _path(pattern, draw(_path_values(pattern, pool)))
    query_names = QUERY_FIELDS.get(view, PAGES)
    query = draw(
        st.just({}) | st.dictionaries(st.sampled_from(query_names), PLAIN | st.sampled_from(ODD_TEXT), max_size=3)
    )
    if "key" in query_names and draw(st.booleans()):
        query.update(bucket="assay", key=draw(st.sampled_from(keys)))
    if query:
        path += "?" + urlencode(query)
    fields = BODY_FIELDS.get(view, ())
    kind = draw(st.sampled_from(["none", "object", "object", "array", "scalar", "garbage", "form", "multipart"]))
    names = st.sampled_from([*fields, "x"]) if fields else st.just("x")
    if kind == "none":
        return path, None, None
    if kind in ("array", "scalar"):
        value = draw(st.lists(JSON, max_size=3) if kind == "array" else SCALARS)
        return path, json.dumps(value).encode(), "application/json"
    if kind == "garbage":
        return path, draw(st.binary(max_size=80)), draw(st.sampled_from(["application/json", "text/plain"]))
    data = {}
    for name in draw(st.lists(names, max_size=len(fields) + 1, unique=True)):
        if name not in FILE_FIELDS or kind != "multipart":
            data[name] = draw(_field_values(name, pool, keys))
    if kind == "object":
        return path, json.dumps(data).encode(), "application/json"
    form = {k: _form_text(v) for k, v in data.items()}
    form = {k: v for k, v in form.items() if _utf8(v)}  # lone surrogates cannot travel in a form
    if kind == "form":
        return path, urlencode(form).encode(), "application/x-www-form-urlencoded"
    for name in FILE_FIELDS & set(fields):
        if draw(st.booleans()):
            form[name] = RawFile(draw(FILE_CONTENTS), draw(FILE_NAMES))
    return path, encode_multipart(BOUNDARY, form), MULTIPART_CONTENT


def check(role: str, method: str, path: str, response, secrets: list[str]) -> None:
    """No 5xx; an error is JSON in EvalAI's shape; no secret reaches a role that may not see it."""
    status, content = response.status_code, response.content
    assert status < 500, (role, method, path, status, content[:300])
    if status >= 400:
        assert response["Content-Type"].startswith("application/json"), (role, method, path, status, content[:200])
        body = json.loads(content)
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], (path, status, body)
    elif response.get("Content-Type", "").startswith("application/json"):
        json.loads(content)
    if role not in SEES_ALL:
        text = content.decode("utf-8", "replace")
        leaked = [s for s in secrets if s in text]
        assert not leaked, (role, method, path, status, leaked, content[:400])


def test_the_secrets_read_as_the_api_writes_them(fuzz_world):
    """The leak check looks for what a host does see: team B's file name in its submission, the host-only
    split's scores on its leaderboard; a participant of team A is refused both."""
    world, pool = fuzz_world
    host, alice = world.api["host"], world.api["participant_a"]
    bob_sub, hidden = pool["submission_id"][2], world.values["phase_split_id"]
    shown = host.get(f"/api/jobs/submission/{bob_sub}/").content.decode()
    assert BOB_FILE in shown
    board = host.get(f"/api/jobs/challenge_phase_split/{hidden}/leaderboard/").content.decode()
    assert all(score in board for score in HIDDEN_SCORES), board[:500]
    check("participant_a", "get", "…", alice.get(f"/api/jobs/submission/{bob_sub}/"), world.objects["secrets"])
    refused = alice.get(f"/api/jobs/challenge_phase_split/{hidden}/leaderboard/")
    assert refused.status_code == 400 and refused.json()["error"] == "Sorry, the leaderboard is not public!"


def test_a_file_field_in_json_is_no_file(fuzz_world):
    """Found by this fuzz: ``{"input_file": [1]}`` as JSON reached submit() as a list (500); a file field
    that is not a multipart file part is the same 400 as a missing one, on both views that take a file."""
    world, _ = fuzz_world
    c, ph, team = world.values["challenge_id"], world.values["phase_id"], world.values["host_team_id"]
    submit = f"/api/jobs/challenge/{c}/challenge_phase/{ph}/submission/"
    zip_upload = f"/api/challenges/challenge/challenge_host_team/{team}/zip_upload/"
    for value in ([1], {"name": "a.json"}, 5, True, "preds.json", None):
        r = world.api["participant_a"].post(submit, {"input_file": value}, format="json")
        assert r.status_code == 400 and r.json()["code"] == "file_required", (value, r.content[:200])
        r = world.api["host"].post(zip_upload, {"zip_configuration": value}, format="json")
        assert r.status_code == 400 and "zip_configuration" in r.json()["error"], (value, r.content[:200])


def test_every_evalai_route_is_covered():
    """The sweep reaches every EvalAI route, and every view it knows fields of still exists."""
    routes = evalai_routes()
    views = {view for _, _, view in routes}
    assert len(routes) > 40, routes
    assert set(BODY_FIELDS) | set(QUERY_FIELDS) <= views, (set(BODY_FIELDS) | set(QUERY_FIELDS)) - views


@pytest.mark.parametrize("role", FUZZ_ROLES)
def test_fuzz_evalai_routes(fuzz_world, role):
    world, pool = fuzz_world
    for pattern, method, view in evalai_routes():
        fuzz_route(world, pool, role, pattern, method, view)


def fuzz_route(world: World, pool: dict[str, list], role: str, pattern: str, method: str, view: str) -> None:
    """EXAMPLES generated requests of ``role`` to one route and method."""
    client, secrets = world.api[role], world.objects["secrets"]

    @given(requests(pattern, method, view, pool, world.objects["keys"]))
    @settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    def fuzz(req):
        path, body, content_type = req
        extra = {"content_type": content_type} if content_type else {}
        check(role, method, path, client.generic(method.upper(), path, body or b"", **extra), secrets)

    fuzz()
