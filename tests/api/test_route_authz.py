"""Every route of the URL configuration × every role, with the exact status each role gets (issue 12).

The routes come from the URL conf itself (tests/api/routes.py), so a route added without a row here fails
``test_every_route_has_a_row``. Each request runs in a savepoint that is rolled back, so writes (sent with a
minimal valid body, BODIES) never change what later rows see: one world serves every row of a role.

How refusals read, deliberately and the same everywhere:

* /api/v1: no credentials → 401; a worker token on a user route (or a user token on a worker route) → 401
  (neither is a credential there). A private object (a submission, upload, team, token, invitation) the
  caller may not see → 404, exactly as a missing id answers (``test_refusals_do_not_tell_existence``). A
  host-only action on a challenge everyone may see → 403.
* EvalAI's face (/api/...): its own statuses — 406 "does not exist" where /api/v1 says 404, 400 for its
  "leaderboard is not public"; a worker token on a user route → 403 (it authenticated, as no user).
* Web pages: not signed in → 302 to the login page (worker tokens are no session); a private object or a
  host page → 404; a refused form answers 302 back with a message (the refusal is in the page).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from tests.factories import upload

from .authz_world import AUDIT_ANSWERS, ROLES, UPLOAD, World, build_world, code_bundle_zip
from .routes import Route, sample_path, url_routes

pytestmark = pytest.mark.django_db

#: Who may see team A's private submission (its file name, "alice.json", shows nowhere else).
TEAM_A_AND_HOSTS = ("participant_a", "host", "admin")

# --- the table -------------------------------------------------------------------------------------------
# A row is eight statuses in ROLES order: anonymous, outsider, participant_a, participant_b, host, admin,
# worker (token of the challenge's queue), other_worker (token of another challenge's queue). The two auditor
# roles (auditor of the challenge; auditor of the other challenge only) answer as the outsider unless a row
# says otherwise. Families name who gets through; "{ok}" is the route's success status.

N_PUBLIC = "{ok} {ok} {ok} {ok} {ok} {ok} {ok} {ok}"
N_USER = "401 {ok} {ok} {ok} {ok} {ok} 401 401"  # any signed-in user (their own things)
N_OWN = "401 404 {ok} 404 404 404 401 401"  # team A's (or alice's) private object, nobody else's
N_SUBMISSION = "401 404 {ok} 404 {ok} {ok} 401 401"  # team A's submission: its team and the hosts
N_HOST = "401 403 403 403 {ok} {ok} 401 401"  # the hosts of a challenge everyone sees
N_HOST_TEAM = "401 404 404 404 {ok} 404 401 401"  # the host team's members (a private object)
N_PARTICIPANT = "401 403 {ok} {ok} 403 403 401 401"  # the challenge's registered teams
N_WORKER = "401 401 401 401 401 401 {ok} {ok}"  # any worker token (the queue decides below)
E_PUBLIC = N_PUBLIC
E_USER = "401 {ok} {ok} {ok} {ok} {ok} 403 403"
E_SUBMISSION = "401 406 {ok} 406 {ok} {ok} 403 403"
E_PARTICIPANT = "401 403 {ok} {ok} 403 403 403 403"
E_OWN = "401 406 {ok} 406 406 406 403 403"  # alice's own upload
E_HOST_TEAM = "401 406 406 406 {ok} 406 403 403"
E_QUEUE = "401 406 406 406 {ok} {ok} {ok} 403"  # the remote queue: its hosts (user token) and its workers
W_PUBLIC = N_PUBLIC
W_USER = "302 {ok} {ok} {ok} {ok} {ok} 302 302"
W_OWN = "302 404 {ok} 404 404 404 302 302"
W_SUBMISSION = "302 404 {ok} 404 {ok} {ok} 302 302"
W_HOST = "302 404 404 404 {ok} {ok} 302 302"
W_DATA_OWNER = "302 403 403 403 {ok} 403 302 302"  # the data package's host team (staff are not owners)
DP_READ = "404 {ok} {ok} {ok} {ok} {ok} 404 404"  # an on-request data package: every signed-in user


AUDITORS = ("auditor", "other_auditor")


def row(family: str, ok: int = 200, **overrides: int) -> dict[str, int]:
    named = [r for r in ROLES if r not in AUDITORS]
    statuses = dict(zip(named, (int(s) for s in family.format(ok=ok).split()), strict=True))
    assert set(overrides) <= set(ROLES), overrides
    statuses.update(overrides)
    return {**{r: statuses["outsider"] for r in AUDITORS}, **statuses}  # auditors: as the outsider, unless told


V1, EV = "api/v1/", "api/^"
SUB, CH, PH, PS = "<int:submission_id>", "<int:challenge_id>", "<int:phase_id>", "<int:phase_split_id>"
E_CH, E_PH, E_SUB = r"(?P<challenge_id>\d+)", r"(?P<phase_id>\d+)", r"(?P<submission_id>\d+)"
E_TEAM, E_PS, E_Q = r"(?P<team_id>\d+)", r"(?P<phase_split_id>\d+)", r"(?P<queue_name>[-\w]+)"
WC = "challenges/<int:pk>/"

EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    # /api/v1: accounts and teams
    ("post", V1 + "auth/login"): row(N_PUBLIC, 201),  # alice's password, whoever sends it
    ("get", V1 + "auth/whoami"): row(N_USER),
    ("get", V1 + "me/submissions"): row(N_USER),  # the caller's own teams' (none: an empty page)
    ("get", V1 + "tokens"): row(N_USER),
    ("post", V1 + "tokens"): row(N_USER, 201),
    ("delete", V1 + "tokens/<int:token_id>"): row(N_OWN, 204),
    ("get", V1 + "teams"): row(N_USER),
    ("post", V1 + "teams"): row(N_USER, 201),
    ("get", V1 + "teams/<int:team_id>/invitations"): row(N_OWN),
    ("post", V1 + "teams/<int:team_id>/invitations"): row(N_OWN, 201),
    ("get", V1 + "host-teams"): row(N_USER),
    ("post", V1 + "host-teams"): row(N_USER, 201),
    ("get", V1 + "host-teams/<int:team_id>/invitations"): row(N_HOST_TEAM),
    ("post", V1 + "host-teams/<int:team_id>/invitations"): row(N_HOST_TEAM, 201),
    # /api/v1: challenges, phases, splits (a published challenge: public)
    ("get", V1 + "schema"): row(N_PUBLIC),
    ("get", V1 + "docs"): row(N_PUBLIC),
    ("get", V1 + "challenges"): row(N_PUBLIC),
    ("post", V1 + "challenges"): row(N_HOST_TEAM, 400),  # the bundle is no zip: past the rule, refused
    ("post", V1 + "challenges/validate"): row(N_USER),  # a report of the bundle's problems
    ("get", V1 + f"challenges/{CH}"): row(N_PUBLIC),
    ("put", V1 + f"challenges/{CH}/bundle"): row(N_HOST, 400),
    ("get", V1 + f"challenges/{CH}/phases"): row(N_PUBLIC),
    ("get", V1 + f"challenges/{CH}/splits"): row(N_PUBLIC),
    ("get", V1 + f"challenges/{CH}/phase-splits"): row(N_PUBLIC),  # the host-only one left out
    ("get", V1 + f"challenges/{CH}/participation"): row(N_USER),  # the caller's own
    # team A is alice's and registered already; nobody else may register it (as a missing team)
    ("post", V1 + f"challenges/{CH}/participation"): row(N_OWN, 409, participant_a=403),
    ("get", V1 + f"challenges/{CH}/submissions"): row(N_HOST),
    ("get", V1 + f"challenges/{CH}/worker-tokens"): row(N_HOST),
    ("get", V1 + f"challenges/{CH}/workers"): row(N_HOST),
    ("get", V1 + f"challenges/{CH}/statistics"): row(N_HOST),
    ("post", V1 + f"challenges/{CH}/worker-tokens"): row(N_HOST, 201),
    ("delete", V1 + "worker-tokens/<int:token_id>"): row(
        N_HOST, 204, outsider=404, participant_a=404, participant_b=404
    ),  # fmt: skip
    ("get", V1 + f"phases/{PH}"): row(N_PUBLIC),
    ("patch", V1 + f"challenges/{CH}"): row(N_HOST),  # texts and dates (challenges.services.editing)
    ("patch", V1 + f"phases/{PH}"): row(N_HOST),
    ("get", V1 + f"phases/{PH}/remaining"): row(N_PARTICIPANT),
    # /api/v1: submissions (alice's finished one; hosts may not cancel here; resuming is not allowed)
    ("get", V1 + f"phases/{PH}/submissions"): row(N_USER),  # the caller's team's own
    ("post", V1 + f"phases/{PH}/submissions"): row(N_PARTICIPANT, 201, host=201, admin=201),
    ("get", V1 + f"phases/{PH}/submissions/export.csv"): row(N_PARTICIPANT, host=200, admin=200),
    ("get", V1 + f"submissions/{SUB}"): row(N_SUBMISSION),
    ("patch", V1 + f"submissions/{SUB}"): row(N_SUBMISSION, host=403, admin=403),  # the team's words
    ("get", V1 + f"submissions/{SUB}/stdout"): row(N_SUBMISSION),
    ("get", V1 + f"submissions/{SUB}/stderr"): row(N_SUBMISSION),
    ("get", V1 + f"submissions/{SUB}/result"): row(N_SUBMISSION),
    # every evaluation (a host's re-run keeps the earlier ones) and each one's files: the current evaluation's rule
    ("get", V1 + f"submissions/{SUB}/evaluations"): row(N_SUBMISSION),
    ("get", V1 + f"submissions/{SUB}/evaluations/<int:number>/files/<str:kind>"): row(N_SUBMISSION),
    ("get", V1 + f"submissions/{SUB}/cases"): row(
        "401 404 403 404 {ok} {ok} 401 401", auditor=200
    ),  # hosts, auditors; its team 403
    ("patch", V1 + f"submissions/{SUB}/visibility"): row(N_SUBMISSION),
    ("delete", V1 + f"submissions/{SUB}/visibility"): row(N_SUBMISSION, 204),
    ("post", V1 + f"submissions/{SUB}/cancel"): row(N_SUBMISSION, 409, host=403),
    ("post", V1 + f"submissions/{SUB}/rerun"): row(N_SUBMISSION, participant_a=403),
    ("post", V1 + f"submissions/{SUB}/resume"): row(N_SUBMISSION, 403),
    ("patch", V1 + f"submissions/{SUB}/marks"): row(N_SUBMISSION, participant_a=403),
    # /api/v1: models (team A's private code-bundle model: its team; staff read it; the challenge takes no
    # code bundles, so submitting is refused past the rule). Registering needs exactly one participant team.
    ("get", V1 + "models"): row(N_USER),
    ("post", V1 + "models"): row(N_USER, 201, outsider=400, host=400, admin=400, auditor=400, other_auditor=400),
    ("get", V1 + "models/<int:model_id>"): row(N_OWN, admin=200),
    ("patch", V1 + "models/<int:model_id>"): row(N_OWN, admin=403),
    ("post", V1 + "models/<int:model_id>/publish"): row(N_OWN, admin=403),
    ("get", V1 + "models/<int:model_id>/versions"): row(N_OWN, admin=200),
    ("post", V1 + "models/<int:model_id>/versions"): row(N_OWN, 201, admin=403),
    ("post", V1 + "models/<int:model_id>/versions/<int:number>/submit"): row(N_OWN, 400, admin=403),
    ("get", V1 + "models/<int:model_id>/results"): row(N_OWN, admin=200),
    ("get", V1 + "models/<int:model_id>/phases"): row(N_OWN, admin=403),
    # /api/v1: data packages (the host team's on-request package: every signed-in user reads its card, workers
    # and anonymous visitors do not (404, as a missing slug); staff are not owners; alice is approved for the
    # inputs, bob's request is pending; the labels file is 404 to all but the host: test_labels_never_leave_...)
    ("get", V1 + "data-packages"): row(N_PUBLIC),
    ("post", V1 + "data-packages"): row(N_HOST, 201, admin=403),
    **{
        ("get", V1 + f"data-packages/<slug:slug>{tail}"): row(DP_READ)
        for tail in ("", "/versions", "/versions/<int:number>", "/access-requests")
    },
    ("patch", V1 + "data-packages/<slug:slug>"): row(N_HOST, admin=403),
    ("post", V1 + "data-packages/<slug:slug>/versions"): row(N_HOST, 201, admin=403),
    ("get", V1 + "data-packages/<slug:slug>/versions/<int:number>/files/<path:path>"): row(
        "404 403 {ok} 403 {ok} 403 404 404"
    ),  # fmt: skip
    # a request: the outsider and staff ask (201); alice is approved, bob pending (409); the owner needs none (400)
    ("post", V1 + "data-packages/<slug:slug>/access-requests"): row("401 201 409 409 400 201 401 401"),
    ("post", V1 + "data-packages/<slug:slug>/access-requests/<int:request_id>"): row(N_HOST, admin=403),
    ("get", V1 + "data-packages/<slug:slug>/downloads"): row(N_HOST, admin=403),
    # /api/v1: audits (the dev phase is audited; team A's submission is under review in the auditor's open
    # round 1, its held one has complete draft answers); the other challenge's auditor is a stranger here
    ("get", V1 + f"challenges/{CH}/auditors"): row(N_HOST, auditor=200),
    ("post", V1 + f"challenges/{CH}/auditors"): row(N_HOST, 201),
    ("delete", V1 + f"challenges/{CH}/auditors/<int:user_id>"): row(N_HOST, 204),
    ("get", V1 + f"submissions/{SUB}/audit"): row(N_SUBMISSION, auditor=200),
    ("get", V1 + f"submissions/{SUB}/audit/answers"): row(N_SUBMISSION, auditor=200),
    ("put", V1 + f"submissions/{SUB}/audit/answers"): row(N_SUBMISSION, host=403, admin=403, auditor=403),
    ("post", V1 + f"submissions/{SUB}/audit/answers/submit"): row(N_SUBMISSION, host=403, admin=403, auditor=403),
    ("get", V1 + f"submissions/{SUB}/audit/reviews"): row(N_SUBMISSION, auditor=200),
    # under review already (staff count as auditors); hosts and the team do not review
    ("post", V1 + f"submissions/{SUB}/audit/reviews"): row(N_SUBMISSION, 409, participant_a=403, host=403, auditor=409),
    # round 1 is the auditor's own: nobody else rates or decides it
    **{
        (method, V1 + f"submissions/{SUB}/audit/reviews/<int:review_round>{tail}"): row(N_SUBMISSION, 403, auditor=200)
        for method, tail in (("patch", ""), ("post", "/decide"))
    },
    # hosts only, and only an approved audit is released (this one is under review; nothing to retract)
    **{
        ("post", V1 + f"submissions/{SUB}/audit/{act}"): row(N_SUBMISSION, 409, participant_a=403, auditor=403)
        for act in ("release", "retract")
    },
    # the evidence (as the web's manifest.json and trail.json): hosts, auditors, staff; the team 403 (not released)
    **{
        ("get", V1 + f"submissions/{SUB}/audit/{tail}"): row(N_SUBMISSION, participant_a=403, auditor=200)
        for tail in ("manifest", "trail")
    },
    # /api/v1: chunked uploads (alice's open upload) and signed URLs (the signature is the credential)
    ("post", V1 + f"phases/{PH}/uploads"): row(N_PARTICIPANT, 201, host=201, admin=201),
    ("get", V1 + "uploads/<str:upload_id>"): row(N_OWN),
    ("delete", V1 + "uploads/<str:upload_id>"): row(N_OWN, 204),
    ("put", V1 + "uploads/<str:upload_id>/parts/<int:part>"): row(N_OWN),
    ("post", V1 + "uploads/<str:upload_id>/complete"): row(N_OWN, 409),  # a part is missing
    ("put", V1 + "signed/upload-parts/<str:token>"): row(N_PUBLIC),
    ("get", V1 + "signed/files/<str:token>/<str:filename>"): row(N_PUBLIC),
    # /api/v1: leaderboards (the test phase's host-only split: its id is no secret, its rows are; EvalAI
    # itself answers "not public" for it, and its dataset split is listed to everyone)
    ("get", V1 + f"challenges/{CH}/leaderboards"): row(N_PUBLIC),
    **{
        ("get", V1 + f"phase-splits/{PS}/leaderboard{tail}"): row(N_HOST)
        for tail in ("", "/history", "/export.csv", "/export.json")
    },
    # /api/v1: the worker protocol (the held job is the queue worker's; another queue's worker holds none)
    ("post", V1 + "worker/claim"): row(N_WORKER, 204),  # nothing waiting in either queue
    ("post", V1 + "worker/complete"): row(N_WORKER),  # another queue's worker: its one result refused inside
    ("post", V1 + "worker/heartbeat"): row(N_WORKER),  # another queue's worker: its one job answered "ended"
    ("post", V1 + "worker/leave"): row(N_WORKER),
    **{
        ("post", V1 + f"worker/jobs/{SUB}/{step}"): row(N_WORKER, other_worker=409)
        for step in ("heartbeat", "release", "complete")
    },
    ("get", V1 + "worker/files/<str:sha256>"): row(N_WORKER, other_worker=404),
    # EvalAI: accounts, teams, participation
    **{("post", f"api/auth/login{s}"): row(E_PUBLIC) for s in ("", "/")},
    **{("get", f"api/accounts/user/get_auth_token{s}"): row(E_USER) for s in ("", "/")},
    ("get", EV + r"participants/participant_team/?$"): row(E_USER),
    ("post", EV + r"participants/participant_team/?$"): row(E_USER, 201),
    ("get", EV + r"hosts/challenge_host_team/?$"): row(E_USER),
    ("post", EV + r"hosts/challenge_host_team/?$"): row(E_USER, 201),
    ("get", EV + r"hosts/create_challenge_host_team/?$"): row(E_USER),
    ("post", EV + r"hosts/create_challenge_host_team/?$"): row(E_USER, 201),
    ("get", EV + rf"participants/participant_team/{E_TEAM}/challenge/?$"): row(E_HOST_TEAM, 406, participant_a=200),
    ("get", EV + rf"challenges/challenge_host_team/{E_TEAM}/challenge/?$"): row(E_HOST_TEAM),
    ("post", EV + rf"challenges/challenge/{E_CH}/participant_team/{E_TEAM}/?$"): row(
        E_HOST_TEAM, 406, participant_a=403
    ),  # fmt: skip
    # EvalAI: challenges and phases (public)
    (
        "get",
        EV + r"challenges/challenge/(?P<time>all|past|present|future)/(?P<approved>[a-z]+)/"
        r"(?P<published>[a-z]+)/?$",
    ): row(E_PUBLIC),  # fmt: skip
    ("get", EV + rf"challenges/challenge/{E_CH}/?$"): row(E_PUBLIC),
    ("get", EV + rf"challenges/challenge/{E_CH}/challenge_phase/?$"): row(E_PUBLIC),
    ("get", EV + rf"challenges/challenge/{E_CH}/challenge_phase/{E_PH}/?$"): row(E_PUBLIC),
    ("get", EV + rf"challenges/challenge/phase/{E_PH}/?$"): row(E_PUBLIC),
    ("get", EV + r"challenges/phase/(?P<slug>[-\w]+)/?$"): row(E_PUBLIC),
    ("get", EV + rf"challenges/{E_CH}/phases/?$"): row(E_PUBLIC),
    ("get", EV + rf"challenges/{E_CH}/challenge_phase_split/?$"): row(E_PUBLIC),
    ("get", EV + rf"challenges/challenge/queues/{E_Q}/?$"): row(E_QUEUE),
    # EvalAI: submissions
    ("get", EV + rf"jobs/{E_CH}/remaining_submissions/?$"): row(E_PARTICIPANT),
    ("get", EV + rf"jobs/challenge/{E_CH}/challenge_phase/{E_PH}/submission/?$"): row(E_PARTICIPANT),
    ("post", EV + rf"jobs/challenge/{E_CH}/challenge_phase/{E_PH}/submission/?$"): row(
        E_PARTICIPANT, 201, host=201, admin=201
    ),  # fmt: skip
    ("patch", EV + rf"jobs/challenge/{E_CH}/challenge_phase/{E_PH}/submission/{E_SUB}/?$"): row(E_SUBMISSION),
    ("get", EV + rf"jobs/submission/{E_SUB}/?$"): row(E_SUBMISSION, worker=406, other_worker=406),
    ("delete", EV + rf"jobs/submission/{E_SUB}/?$"): row(E_SUBMISSION, 204),
    ("patch", EV + rf"jobs/challenges/{E_CH}/submissions/{E_SUB}/update_submission_meta/?$"): row(E_SUBMISSION),
    ("post", EV + rf"jobs/submissions/{E_SUB}/re-run/?$"): row(E_SUBMISSION, participant_a=403),
    ("post", EV + rf"jobs/submissions/{E_SUB}/resume/?$"): row(E_SUBMISSION, 403),
    ("get", EV + r"jobs/submission_files/?$"): row(E_SUBMISSION, outsider=406, participant_b=406),
    ("post", EV + rf"jobs/phases/{E_PH}/get_submission_file_presigned_url/?$"): row(
        E_PARTICIPANT, 201, host=201, admin=201
    ),  # fmt: skip
    # alice's presigned upload, its parts never sent: finishing it is refused (409), then fails (400)
    ("post", EV + rf"jobs/phases/{E_PH}/finish_submission_file_upload/{E_SUB}/?$"): row(E_OWN, 409),
    ("post", EV + rf"jobs/phases/{E_PH}/send_submission_message/{E_SUB}/?$"): row(E_OWN, 400),
    ("post", EV + rf"challenges/phases/{E_PH}/get_annotation_file_presigned_url/?$"): row(E_USER, 400),
    ("post", EV + rf"challenges/phases/{E_PH}/finish_annotation_file_upload/?$"): row(E_USER, 400),
    # a phase of a challenge that is not docker-based: the same 400 whoever asks (the challenge is public)
    ("get", EV + rf"challenges/phases/{E_PH}/participant_team/aws/credentials/?$"): row(E_USER, 400),
    # EvalAI: leaderboards ("not public" is EvalAI's 400; all entries: hosts only)
    ("get", EV + rf"jobs/challenge_phase_split/{E_PS}/leaderboard/?$"): row(E_PUBLIC, 400, host=200, admin=200),
    ("get", EV + rf"jobs/phase_split/{E_PS}/public_leaderboard_all_entries/?$"): row(
        E_PUBLIC, 403, host=200, admin=200
    ),  # fmt: skip
    # EvalAI: remote evaluation (the challenge's queue: its hosts and its workers)
    ("get", EV + rf"jobs/challenge/queues/{E_Q}/?$"): row(E_QUEUE),
    ("post", EV + rf"jobs/queues/{E_Q}/?$"): row(E_QUEUE),
    **{
        (method, EV + rf"jobs/{path}/?$"): row(E_QUEUE)
        for method in ("put", "patch")
        for path in (f"challenge/{E_CH}/update_submission", f"challenges/{E_CH}/update_partially_evaluated_submission")
    },
    # it finished (409); another queue's worker is told nothing of it (as a missing id)
    ("patch", EV + rf"jobs/submission/{E_SUB}/update_started_at/?$"): row(E_QUEUE, 409, other_worker=406),
    # EvalAI: EvalAI-Starters' GitHub flow and the zip upload (the zip is no bundle: 400 past the rule)
    **{
        ("post", EV + rf"challenges/challenge/challenge_host_team/{E_TEAM}/{step}/?$"): row(E_HOST_TEAM, 400)
        for step in ("validate_challenge_config", "create_or_update_github_challenge", "zip_upload")
    },
    # EvalAI's web addresses: a redirect whoever asks (the page it leads to decides)
    ("get", r"web/^challenges/challenge-page/(?P<challenge_id>\d+)(?:/(?P<tab>[-\w]+)(?:/(?P<rest>[-\w]+))?)?/?$"): row(
        W_PUBLIC, 302
    ),  # fmt: skip
    # web: public pages
    ("get", ""): row(W_PUBLIC),
    ("get", "healthz"): row(W_PUBLIC),
    # monitoring: every role asks from loopback (the test client's address), where /metrics is open; from elsewhere it
    # takes ASSAY_METRICS_TOKEN (404 while none is set, 403 without the right one: tests/server/test_observability.py)
    ("get", "metrics"): row(W_PUBLIC),
    ("get", "readyz"): row(W_PUBLIC, 503),  # no platform worker seen lately in this world: not ready, whoever asks
    **{("get", WC + tail): row(W_PUBLIC) for tail in ("", "logo", "evaluation", "terms", "phases", "leaderboard")},
    ("get", "invitations/<str:token>"): row(W_PUBLIC),  # the link is the credential; answering needs the address
    # web: participants (alice's team is registered; refused forms redirect back with a message)
    ("get", WC + "participate"): row(W_USER),
    ("post", WC + "participate"): row(W_USER, 302),
    ("post", WC + "withdraw"): row(W_OWN, 302, participant_b=302),
    ("post", WC + "accept-terms"): row(W_OWN, 302, participant_b=302),
    ("get", WC + "submit"): row(W_USER),
    ("post", WC + "submit"): row(W_PUBLIC, 302),  # a refused submission comes back to the form, with why
    ("post", WC + "uploads"): row(W_USER, 201, outsider=403),  # the page's script reads JSON
    ("get", "uploads/<uuid:upload_id>"): row(W_OWN),
    ("post", "uploads/<uuid:upload_id>/parts/<int:number>"): row(W_OWN),
    ("put", "uploads/<uuid:upload_id>/parts/<int:number>"): row(W_OWN),
    ("post", "uploads/<uuid:upload_id>/finish"): row(W_OWN, 409),
    ("get", WC + "submissions"): row(W_USER),
    ("get", WC + "submissions/rows"): row(W_USER),
    ("get", "submissions/<int:submission_id>/files/<str:kind>"): row(W_SUBMISSION),
    ("get", "submissions/<int:submission_id>/evaluations/<int:number>/files/<str:kind>"): row(W_SUBMISSION),
    # the evidence trail of team A's audited submission (under review): hosts, auditors, staff; its team 403
    ("get", "submissions/<int:submission_id>/audit/trail.json"): row("302 404 403 404 {ok} {ok} 302 302", auditor=200),
    # web: audits of team A's submission (under review, round 1 the auditor's; no summary): its audit page for
    # the team, hosts, auditors and staff; a refused form comes back with a message (302); results not released
    ("get", "audits/"): row(W_USER),
    ("get", "submissions/<int:submission_id>/audit"): row(W_SUBMISSION, auditor=200),
    ("post", "submissions/<int:submission_id>/audit/answers"): row(
        W_SUBMISSION, 302, host=403, admin=403, auditor=403
    ),  # the team's, but under review: not changed
    ("post", "submissions/<int:submission_id>/audit/review/<str:action>"): row(
        W_SUBMISSION, 302, participant_a=403, host=403, auditor=302
    ),  # auditors (staff count)
    ("post", "submissions/<int:submission_id>/audit/release/<str:action>"): row(
        W_SUBMISSION, 302, participant_a=403, auditor=403
    ),  # hosts; not approved yet
    **{
        ("get", f"submissions/<int:submission_id>/audit/{tail}"): row(W_SUBMISSION, participant_a=403, auditor=200)
        for tail in ("report", "report.pdf", "manifest.json")
    },
    ("post", "submissions/<int:submission_id>/<str:action>"): row(W_SUBMISSION, 302),
    # web: hosts
    ("get", "host/"): row(W_USER),
    ("post", "host/"): row(W_USER, 302),
    ("get", "host/challenges/new"): row(W_USER),
    ("post", "host/challenges/new"): row(W_USER),
    ("get", WC + "host/"): row(W_HOST),
    **{
        ("post", WC + f"host/{tail}"): row(W_HOST, 400)
        for tail in ("settings", "phases/<int:phase_id>", "splits/<int:split_id>")
    },  # fmt: skip
    **{
        ("post", WC + f"host/{tail}"): row(W_HOST, 302)
        for tail in (
            "pause",
            "bundle",
            "invitations",
            "submissions/rerun",
            "submissions/<int:submission_id>/<str:action>",
            "participants/<int:participation_id>/<str:action>",
        )
    },  # fmt: skip
    **{
        ("get", WC + f"host/{tail}"): row(W_HOST)
        for tail in ("submissions", "participants", "export/<str:kind>.csv", "workers", "errors", "audits")
    },
    ("get", WC + "host/edit"): row(W_HOST),
    ("get", WC + "host/statistics"): row(W_HOST),
    ("get", WC + "host/submissions/<int:submission_id>"): row(W_HOST),  # its evaluations
    ("post", WC + "host/edit/texts"): row(W_HOST, 400),  # an empty form: the page again, with why
    ("post", WC + "host/edit/phases/<int:phase_id>"): row(W_HOST, 400),
    ("post", WC + "host/edit/splits/<int:split_id>/remove"): row(W_HOST),  # asks first
    ("post", WC + "host/auditors"): row(W_HOST, 302),  # nobody named: back with why
    ("post", WC + "host/auditors/<int:user_id>/remove"): row(W_HOST, 302),
    ("post", WC + "host/workers"): row(W_HOST),
    # web: models (team A's private model; a refused form comes back to the page with why: 302)
    ("get", "models/"): row(W_USER),
    ("post", "models/"): row(W_USER, 400),  # an empty form: the list again, saying what is missing
    ("get", "models/<int:model_id>/"): row(W_OWN, admin=200),
    **{
        ("post", f"models/<int:model_id>/{tail}"): row(W_OWN, 302, admin=403)
        for tail in ("publish", "versions", "submit")
    },
    # web: data packages (the host team's on-request package; a refused form comes back to the page with why: 302;
    # anonymous visitors are sent to sign in; alice is approved for the inputs, bob's request is pending)
    ("get", "data/"): row(W_PUBLIC),
    ("post", "data/"): row(W_DATA_OWNER, 302),  # a non-member names the host team: the form again, 403
    ("get", "data/<slug:slug>/"): row(W_USER),
    ("post", "data/<slug:slug>/edit"): row(W_DATA_OWNER, 302),
    ("post", "data/<slug:slug>/versions"): row(W_DATA_OWNER, 302),
    ("get", "data/<slug:slug>/versions/<int:number>/files/<path:path>"): row("302 403 {ok} 403 {ok} 403 302 302"),
    ("post", "data/<slug:slug>/access"): row(W_USER, 302),  # asked, or back with why (asked already, the owner)
    ("post", "data/<slug:slug>/access/<int:request_id>/<str:action>"): row(W_DATA_OWNER, 302),
    # web: teams, invitations, account
    ("get", "teams/"): row(W_USER),
    ("post", "teams/"): row(W_USER, 302),
    ("get", "teams/<int:pk>/"): row(W_PUBLIC),  # the public team page; its members also manage it there
    ("post", "teams/<int:pk>/"): row(W_OWN, 302, admin=400),  # staff see a team, only members invite
    ("get", "host-teams/<int:pk>/"): row(W_HOST),
    ("post", "host-teams/<int:pk>/"): row(W_HOST),  # no address given: the page again
    ("post", "teams/<int:pk>/members/<int:user_id>/remove/<str:kind>"): row(W_OWN, 302, admin=302),
    ("post", "invitations/<int:invitation_id>/revoke"): row(W_OWN, 302),
    ("post", "invitations/<str:token>"): row(W_USER),  # not the invited address: the page, with why
    ("get", "account/profile"): row(W_USER),
    ("post", "account/profile"): row(W_USER),
    ("get", "account/tokens"): row(W_USER),
    ("post", "account/tokens"): row(W_USER),
    ("post", "account/tokens/<int:token_id>/revoke"): row(W_OWN, 302),
    ("get", "me/submissions"): row(W_USER),  # the caller's own teams' submissions
    # notifications: my e-mail choice; a challenge's webhooks (an empty form: back with why; pause a webhook)
    ("get", "account/notifications"): row(W_USER),
    ("post", "account/notifications"): row(W_USER, 302),
    ("get", WC + "host/webhooks"): row(W_HOST),
    ("post", WC + "host/webhooks"): row(W_HOST, 302),
    ("post", WC + "host/webhooks/<int:webhook_id>/<str:action>"): row(W_HOST, 302),
    ("get", V1 + "notification-settings"): row(N_USER),
    ("patch", V1 + "notification-settings"): row(N_USER),
    ("get", V1 + f"challenges/{CH}/webhooks"): row(N_HOST),
    ("post", V1 + f"challenges/{CH}/webhooks"): row(N_HOST, 201),
    ("get", V1 + f"challenges/{CH}/webhooks/<int:webhook_id>"): row(N_HOST),
    ("patch", V1 + f"challenges/{CH}/webhooks/<int:webhook_id>"): row(N_HOST),
    ("delete", V1 + f"challenges/{CH}/webhooks/<int:webhook_id>"): row(N_HOST, 204),
    ("get", V1 + f"challenges/{CH}/webhooks/<int:webhook_id>/deliveries"): row(N_HOST),
}

#: Third-party URL confs, covered once each (test_third_party_pages), not route by route.
THIRD_PARTY = ("admin/", "accounts/")

# --- bodies: a minimal valid one per write (a refusal must be about who asks, not about the body) ----------

Body = Callable[[dict[str, Any]], tuple[str, bytes]]


def as_json(make: Callable[[dict[str, Any]], Any]) -> Body:
    return lambda v: ("application/json", json.dumps(make(v)).encode())


def as_form(make: Callable[[dict[str, Any]], dict]) -> Body:
    return lambda v: ("application/x-www-form-urlencoded", urlencode(make(v)).encode())


def as_multipart(make: Callable[[dict[str, Any]], dict]) -> Body:
    return lambda v: (MULTIPART_CONTENT, encode_multipart(BOUNDARY, make(v)))


def octets(size: int) -> Body:
    return lambda v: ("application/octet-stream", b"x" * size)


def _entry() -> Any:
    return upload(b'{"dev-a0": 1}', "entry.json")


def _not_a_zip() -> Any:
    return upload(b"not a zip", "bundle.zip")


def _data_zip() -> Any:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inputs/case-2.json", b"{}")
    return upload(buf.getvalue(), "v2.zip")


_RESULT = {"result": [{"public": {"Accuracy": 0.5, "F1": 0.5}}]}

BODIES: dict[tuple[str, str], Body] = {
    ("post", V1 + "data-packages"): as_json(
        lambda v: {"slug": "new-data", "title": "New", "host_team": v["host_team_id"]}
    ),
    ("patch", V1 + "data-packages/<slug:slug>"): as_json(lambda v: {"title": "Edited", "card": {"licence": "CC0"}}),
    ("post", V1 + "data-packages/<slug:slug>/versions"): as_multipart(lambda v: {"archive": _data_zip()}),
    ("post", V1 + "data-packages/<slug:slug>/access-requests"): as_json(lambda v: {"reason": "research"}),
    ("post", V1 + "data-packages/<slug:slug>/access-requests/<int:request_id>"): as_json(lambda v: {"approve": True}),
    ("post", V1 + "models"): as_multipart(lambda v: {"name": "m2", "kind": "code_bundle", "file": code_bundle_zip()}),
    ("patch", V1 + "models/<int:model_id>"): as_json(lambda v: {"summary": "Counts."}),
    ("post", V1 + "models/<int:model_id>/publish"): as_json(lambda v: {"published": True}),
    ("post", V1 + "models/<int:model_id>/versions"): as_multipart(lambda v: {"file": code_bundle_zip("echo 2")}),
    ("post", V1 + "models/<int:model_id>/versions/<int:number>/submit"): as_json(lambda v: {"phase": v["phase_id"]}),
    ("post", V1 + f"phases/{PH}/submissions"): as_multipart(lambda v: {"input_file": _entry()}),
    ("post", V1 + f"challenges/{CH}/worker-tokens"): as_json(lambda v: {"name": "w2"}),
    ("post", V1 + "worker/claim"): as_json(lambda v: {"worker_id": "w1"}),
    ("post", V1 + "worker/complete"): as_json(
        lambda v: {"results": [{"submission_id": v["held_id"], "attempt": 1, "output": _RESULT}]}
    ),
    ("post", V1 + "worker/heartbeat"): as_json(lambda v: {"jobs": [{"submission_id": v["held_id"], "attempt": 1}]}),
    ("post", V1 + "worker/leave"): as_json(lambda v: {"worker_id": "w1"}),
    ("post", V1 + f"worker/jobs/{SUB}/heartbeat"): as_json(lambda v: {"attempt": 1}),
    ("post", V1 + f"worker/jobs/{SUB}/release"): as_json(lambda v: {"attempt": 1}),
    ("post", V1 + f"worker/jobs/{SUB}/complete"): as_json(lambda v: {"attempt": 1, "output": _RESULT}),
    ("post", V1 + "auth/login"): as_json(lambda v: {"username": "alice", "password": "pw"}),
    ("post", V1 + "tokens"): as_json(lambda v: {"name": "cli", "days": 1}),
    ("post", V1 + "teams"): as_json(lambda v: {"name": "Team New"}),
    ("post", V1 + "teams/<int:team_id>/invitations"): as_json(lambda v: {"email": "eve@uni.example"}),
    ("post", V1 + "host-teams"): as_json(lambda v: {"name": "Hosts New"}),
    ("post", V1 + "host-teams/<int:team_id>/invitations"): as_json(lambda v: {"email": "eve@uni.example"}),
    ("post", V1 + "challenges"): as_multipart(lambda v: {"bundle": _not_a_zip(), "host_team": v["host_team_id"]}),
    ("post", V1 + "challenges/validate"): as_multipart(lambda v: {"bundle": _not_a_zip()}),
    ("put", V1 + f"challenges/{CH}/bundle"): as_multipart(lambda v: {"bundle": _not_a_zip()}),
    ("post", V1 + f"challenges/{CH}/participation"): as_json(lambda v: {"team": v["team_id"], "accept_terms": True}),
    ("post", V1 + f"phases/{PH}/uploads"): as_json(lambda v: UPLOAD),
    ("put", V1 + "uploads/<str:upload_id>/parts/<int:part>"): octets(1024),
    ("put", V1 + "signed/upload-parts/<str:token>"): octets(1024),
    ("patch", V1 + f"submissions/{SUB}/visibility"): as_json(lambda v: {"is_public": True}),
    ("patch", V1 + f"submissions/{SUB}"): as_json(lambda v: {"method_name": "renamed"}),
    ("patch", V1 + f"challenges/{CH}"): as_json(lambda v: {"short_description": "edited"}),
    ("patch", V1 + f"phases/{PH}"): as_json(lambda v: {"max_submissions_per_day": 50}),
    ("patch", V1 + f"submissions/{SUB}/marks"): as_json(lambda v: {"is_flagged": True}),
    ("post", V1 + f"challenges/{CH}/auditors"): as_json(lambda v: {"user": "carol"}),
    ("put", V1 + f"submissions/{SUB}/audit/answers"): as_json(lambda v: {"answers": AUDIT_ANSWERS}),
    ("patch", V1 + f"submissions/{SUB}/audit/reviews/<int:review_round>"): as_json(
        lambda v: {"ratings": {"intended_use": {"rating": 4, "comment": "clear"}}}
    ),
    ("post", V1 + f"submissions/{SUB}/audit/reviews/<int:review_round>/decide"): as_json(
        lambda v: {"decision": "approve"}
    ),
    ("post", V1 + f"submissions/{SUB}/audit/retract"): as_json(lambda v: {"reason": "labels were wrong"}),
    **{("post", f"api/auth/login{s}"): as_json(lambda v: {"username": "alice", "password": "pw"}) for s in ("", "/")},
    ("post", EV + r"participants/participant_team/?$"): as_json(lambda v: {"team_name": "Team New"}),
    ("post", EV + r"hosts/challenge_host_team/?$"): as_json(lambda v: {"team_name": "Hosts New"}),
    ("post", EV + r"hosts/create_challenge_host_team/?$"): as_json(lambda v: {"team_name": "Hosts New"}),
    ("post", EV + rf"jobs/challenge/{E_CH}/challenge_phase/{E_PH}/submission/?$"): as_multipart(
        lambda v: {"input_file": _entry()}
    ),
    ("patch", EV + rf"jobs/challenge/{E_CH}/challenge_phase/{E_PH}/submission/{E_SUB}/?$"): as_json(
        lambda v: {"is_public": True}
    ),
    # publishing, which the team and the hosts may both do (a method name is the team's only:
    # tests/server/submissions/test_describe.py)
    ("patch", EV + rf"jobs/challenges/{E_CH}/submissions/{E_SUB}/update_submission_meta/?$"): as_json(
        lambda v: {"is_public": True}
    ),
    ("post", EV + rf"jobs/phases/{E_PH}/get_submission_file_presigned_url/?$"): as_json(
        lambda v: {"file_name": "big.json", "num_file_chunks": 1}
    ),
    **{
        (method, EV + rf"jobs/{path}/?$"): as_json(
            lambda v, status=status: {
                "submission": v["held_id"],
                "submission_status": status,
                "result": json.dumps(_RESULT),
            }  # fmt: skip
        )
        for method, status in (("put", "finished"), ("patch", "running"))
        for path in (f"challenge/{E_CH}/update_submission", f"challenges/{E_CH}/update_partially_evaluated_submission")
    },
    **{
        ("post", EV + rf"challenges/challenge/challenge_host_team/{E_TEAM}/{step}/?$"): as_multipart(
            lambda v: {"zip_configuration": _not_a_zip()}
        )
        for step in ("validate_challenge_config", "create_or_update_github_challenge", "zip_upload")
    },
    ("post", WC + "participate"): as_form(lambda v: {"team": v["team_id"], "accept_terms": "on"}),
    ("post", WC + "accept-terms"): as_form(lambda v: {"accept_terms": "on"}),
    ("post", WC + "submit"): as_multipart(lambda v: {"phase": v["phase_id"], "input_file": _entry()}),
    ("post", WC + "uploads"): as_form(lambda v: {"phase": v["phase_id"], "file_name": "big.json", "size": 2048}),
    ("post", "uploads/<uuid:upload_id>/parts/<int:number>"): octets(1024),
    ("put", "uploads/<uuid:upload_id>/parts/<int:number>"): octets(1024),
    ("post", "data/"): as_form(
        lambda v: {"slug": "web-data", "title": "Web", "host_team": v["host_team_id"], "access": "on_request"}
    ),
    ("post", "data/<slug:slug>/edit"): as_form(lambda v: {"title": "Edited", "access": "on_request"}),
    ("post", "data/<slug:slug>/versions"): as_multipart(lambda v: {"archive": _data_zip()}),
    ("post", "data/<slug:slug>/access"): as_form(lambda v: {"reason": "research"}),
    ("post", "data/<slug:slug>/access/<int:request_id>/<str:action>"): as_form(lambda v: {"note": "ok"}),
    ("post", "teams/"): as_form(lambda v: {"name": "Team New"}),
    ("post", "teams/<int:pk>/"): as_form(lambda v: {"email": "eve@uni.example"}),
    ("post", "host/"): as_form(lambda v: {"name": "Hosts New"}),
    ("post", "account/tokens"): as_form(lambda v: {"name": "cli", "days": 30}),
    ("patch", V1 + "notification-settings"): as_json(lambda v: {"submission_emails": False}),
    ("post", V1 + f"challenges/{CH}/webhooks"): as_json(
        lambda v: {"url": "https://93.184.215.14/hook", "events": ["submission.finished"]}
    ),
    ("patch", V1 + f"challenges/{CH}/webhooks/<int:webhook_id>"): as_json(lambda v: {"active": False}),
    # destructive web actions ask first (a confirmation page); the confirmed form does the action
    **{
        ("post", pattern): as_form(lambda v: {"confirmed": "yes"})
        for pattern in (
            WC + "withdraw",
            WC + "host/submissions/rerun",
            "teams/<int:pk>/members/<int:user_id>/remove/<str:kind>",
            WC + "host/auditors/<int:user_id>/remove",
        )
    },
}
QUERIES: dict[tuple[str, str], Callable[[dict[str, Any]], str]] = {
    ("get", EV + r"jobs/submission_files/?$"): lambda v: urlencode({"bucket": "assay", "key": v["stdout_key"]}),
}

# --- running the table -----------------------------------------------------------------------------------


def project_routes() -> list[Route]:
    """The URL conf's routes, first match only (a pattern listed twice is served by its first view)."""
    seen: set[str] = set()
    routes = []
    for route in url_routes():
        if route.pattern.startswith(THIRD_PARTY) or route.pattern in seen:
            continue
        seen.add(route.pattern)
        routes.append(route)
    return routes


def EMPTY(values: dict[str, Any]) -> tuple[str, bytes]:
    return "application/json", b"{}"


def request(world: World, role: str, method: str, pattern: str, values: dict[str, Any], body: Body | None = None):
    """One request, rolled back afterwards: no row sees another row's writes."""
    client = (world.api if pattern.startswith("api/") else world.web)[role]
    path = sample_path(pattern, values)
    if (method, pattern) in QUERIES:
        path += "?" + QUERIES[method, pattern](values)
    default = as_json(lambda v: {}) if pattern.startswith("api/") else as_form(lambda v: {})
    content_type, data = (body or BODIES.get((method, pattern), default))(values)
    with transaction.atomic():
        response = client.generic(method.upper(), path, data, content_type=content_type)
        transaction.set_rollback(True)
    return response


def _as_row(statuses: dict[str, int]) -> str:
    return " ".join(str(statuses[role]) for role in ROLES)


def test_every_route_has_a_row():
    """A route added to the URL conf needs its row here; a row for a route that is gone must go."""
    served = {(method, route.pattern) for route in project_routes() for method in route.methods}
    missing = sorted(served - set(EXPECTED))
    stale = sorted(set(EXPECTED) - served)
    hint = "add to EXPECTED in tests/api/test_route_authz.py, with a minimal valid body in BODIES for writes:\n"
    assert not missing, hint + "\n".join(f"    ({m!r}, {p!r}): row(...)," for m, p in missing)
    assert not stale, "EXPECTED names routes the URL conf no longer serves (remove them):\n" + "\n".join(
        f"    {m} {p}" for m, p in stale
    )


@pytest.fixture
def authz_world(world, users) -> World:
    return build_world(world, users)


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_each_role_exactly(authz_world, role):
    started = time.monotonic()
    wrong = []
    for route in project_routes():
        for method in route.methods:
            expected = EXPECTED.get((method, route.pattern))
            if expected is None:
                continue  # test_every_route_has_a_row names it
            response = request(authz_world, role, method, route.pattern, authz_world.values_for(route.pattern))
            body = b"".join(response.streaming_content) if response.streaming else response.content
            if response.status_code != expected[role]:
                wrong.append(f"{method.upper()} {route.pattern}: {response.status_code}, expected {expected[role]}"
                             f" — {body[:160]!r}")  # fmt: skip
            elif role not in TEAM_A_AND_HOSTS and b"alice.json" in body:
                wrong.append(f"{method.upper()} {route.pattern}: team A's private submission shows")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)
    if os.environ.get("ASSAY_AUTHZ_TIMING"):
        print(f"{role}: {time.monotonic() - started:.1f} s")


def test_lists_leave_out_what_a_role_may_not_see(authz_world):
    """Phase-split lists leave out the host-only split, phase lists the annotation files, for all but hosts."""
    hidden = authz_world.values["phase_split_id"]
    c = authz_world.values["challenge_id"]
    for role in ROLES:
        client = authz_world.api[role]
        for path in (f"/api/v1/challenges/{c}/phase-splits", f"/api/challenges/{c}/challenge_phase_split"):
            body = client.get(path).json()  # /api/v1 answers a page, EvalAI a bare list
            listed = [row["id"] for row in (body["results"] if isinstance(body, dict) else body)]
            assert (hidden in listed) == (role in ("host", "admin")), (role, path)
        for path in (f"/api/v1/challenges/{c}/phases", f"/api/challenges/challenge/{c}/challenge_phase"):
            response = client.get(path)
            assert response.status_code == 200 and b"annotations/" not in response.content, (role, path)


def test_labels_never_leave_the_host_team(authz_world):
    """The data package's labels file: the host downloads it; every other role, alice (approved for the inputs)
    included, gets 404 as for a missing file, and it is listed to nobody else; only downloads made are logged."""
    from assay.server.data_packages.models import DownloadRecord

    from .authz_world import DATA_LABELS, DATA_PACKAGE

    base = f"/api/v1/data-packages/{DATA_PACKAGE}/versions/1"
    for role in ROLES:
        client = authz_world.api[role]
        response = client.get(f"{base}/files/{DATA_LABELS}")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert response.status_code == (200 if role == "host" else 404), role
        assert (b"secret-label" in body) == (role == "host"), role
        listed = client.get(base)
        paths = [f["path"] for f in listed.json()["files"]] if listed.status_code == 200 else []
        assert (DATA_LABELS in paths) == (role == "host"), role
    log = DownloadRecord.objects.filter(file__path=DATA_LABELS)
    assert [r.user.username for r in log] == ["host1"]


#: Path parameters naming private objects, and an id of that kind that does not exist.
MISSING_IDS = {
    "submission_id": 999999,
    "upload_id": "00000000-0000-0000-0000-000000000009",
    "token_id": 999999,
    "team_id": 999999,
    "invitation_id": 999999,
    "participation_id": 999999,
}


#: Roles to whom every private object of the world is someone else's (team A's, the hosts', the queue's).
STRANGERS = ("outsider", "participant_b", "other_worker", "other_auditor")


def test_refusals_do_not_tell_existence(authz_world):
    """Where a stranger is refused a private object, a missing id of that kind gets the very same status
    (and so does any role refused with a "not found"). A 403 to one who may see the object (alice may
    not re-run her own submission here) tells nothing new."""
    told = []
    for route in project_routes():
        names = [n for n in MISSING_IDS if f"<{n}>" in route.pattern or f":{n}>" in route.pattern]
        if not names:
            continue
        values = {**authz_world.values_for(route.pattern), **{n: MISSING_IDS[n] for n in names}}
        for method in route.methods:
            expected = EXPECTED[method, route.pattern]
            refused = [r for r in ROLES if expected[r] in (404, 406) or (expected[r] == 403 and r in STRANGERS)]
            for role in refused:
                got = request(authz_world, role, method, route.pattern, values).status_code
                if got != expected[role]:
                    told.append(f"{role} {method.upper()} {route.pattern}: {expected[role]} if it exists, {got} if not")
    assert not told, "\n".join(told)


#: Writes whose body names the object the rule is about (the host team, the team, the phase): read first.
BODY_NAMES_THE_OBJECT = {
    ("post", "data/"),  # the host team that will own the package
    ("post", V1 + "challenges"),
    ("post", V1 + f"challenges/{CH}/participation"),
    ("post", WC + "uploads"),
}


def test_refusals_come_before_the_body_is_read(authz_world):
    """Who may write is decided before what is written: an empty body gets a refused role the same status."""
    early = []
    for route in project_routes():
        for method in route.methods:
            key = (method, route.pattern)
            if method == "get" or key not in BODIES or key in BODY_NAMES_THE_OBJECT:
                continue
            expected, values = EXPECTED[key], authz_world.values_for(route.pattern)
            for role in (r for r in ROLES if expected[r] in (401, 403, 404, 406)):
                got = request(authz_world, role, method, route.pattern, values, body=EMPTY).status_code
                if got != expected[role]:
                    early.append(f"{role} {method.upper()} {route.pattern}: {got} with no body, not {expected[role]}")
    assert not early, "\n".join(early)


def test_submit_asks_who_submits_before_the_body(authz_world):
    """Regression: the submit and upload POSTs of both APIs judged the body (no file, a bad URL, a bad chunk
    count: 400) before asking gate() who may submit; a stranger now gets its 403 whatever it sends."""
    c, ph = authz_world.values["challenge_id"], authz_world.values["phase_id"]
    outsider = authz_world.api["outsider"]
    submit = f"/api/jobs/challenge/{c}/challenge_phase/{ph}/submission/"
    presign = f"/api/jobs/phases/{ph}/get_submission_file_presigned_url/"
    for path, body in (
        (submit, {}),
        (submit, {"project_url": "ftp://x", "method_name": "m"}),
        (presign, {"num_file_chunks": "many", "file_name": "a.json"}),
        (presign, {"num_file_chunks": 1, "file_name": "a.exe"}),
    ):
        r = outsider.post(path, body, format="json")
        assert r.status_code == 403, (path, body, r.status_code, r.content[:200])
        assert r.json()["code"] == "not_participating", r.content[:200]
    for path, body in (
        (f"/api/v1/phases/{ph}/submissions", {}),
        (f"/api/v1/phases/{ph}/submissions", {"project_url": "ftp://x"}),
        (f"/api/v1/phases/{ph}/uploads", {}),
        (f"/api/v1/phases/{ph}/uploads", {"file_name": "a.exe", "size": -1}),
    ):
        r = outsider.post(path, body, format="json")
        assert r.status_code == 403, (path, body, r.status_code, r.content[:200])
        assert r.json()["error"]["code"] == "not_participating", r.content[:200]


def test_third_party_pages(authz_world):
    """Django's admin and allauth's account pages: covered once each, their own rules."""
    web = authz_world.web
    assert [web[r].get("/admin/").status_code for r in ("anonymous", "participant_a", "admin")] == [302, 302, 200]
    assert web["anonymous"].get("/accounts/login/").status_code == 200
    assert web["participant_a"].get("/accounts/login/").status_code == 302  # signed in already
