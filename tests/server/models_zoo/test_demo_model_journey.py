"""Issue 16's "done means" for models, on what ``make demo`` sets up: the demo container challenge's image is
registered once as the model ``demo-predictor`` (``demo.seed``), then submitted to the challenge's two phases —
to ``container`` with ``assay models submit`` (the CLI, over HTTP), to ``heldout`` from the model's web page —
both evaluated by the demo's in-process worker running the image on the real Docker engine, and the model's
page (web, ``/api/v1/models/<id>/results``, ``assay models show``) lists both results with a link to each
leaderboard entry. The demo's phases are not audited, so no result links an audit report.

Needs a Docker engine and busybox-static (the ``engine`` fixture skips without them); the image is built
locally from busybox (``docker import``), never pulled.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.cli.test_client import run  # noqa: F401  (the CLI runner fixture)
from tests.server.test_demo_container import CONTAINER_BUNDLE, DEMO_BUNDLE, engine  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSWORD = "demo"
EVALUATION_WAIT = 240.0  # seconds a container evaluation may take on a busy 2-core machine


def _finished(pk: int) -> dict:
    """The submission once the worker is done with it (its status and failure, for the assertion's message)."""
    from assay.server.submissions.models import Submission

    deadline = time.monotonic() + EVALUATION_WAIT
    while True:
        sub = Submission.objects.get(pk=pk)
        if sub.status in ("finished", "failed", "cancelled") or time.monotonic() > deadline:
            return {"status": sub.status, "failure": sub.failure_reason}
        time.sleep(0.5)


def test_the_demo_model_goes_to_both_phases_from_the_cli_and_the_web(
    live_server,
    settings,
    media,
    tmp_path,
    client,
    run,  # noqa: F811
    engine,  # noqa: F811
):
    from django.urls import reverse

    from assay.server import demo, inprocess_worker
    from assay.server.challenges.models import Challenge
    from assay.server.leaderboards.models import LeaderboardEntry
    from assay.server.models_zoo.models import Model, ModelSubmission
    from assay.server.submissions.models import Submission

    settings.VAR_DIR = tmp_path / "var"
    lines = list(demo.seed(PASSWORD, str(DEMO_BUNDLE), str(CONTAINER_BUNDLE), site=live_server.url))
    model = Model.objects.get(name=demo.DEMO_MODEL)
    (version,) = model.versions.all()  # registered once
    container = Challenge.objects.get(host_team__name=demo.DEMO_HOST_TEAM, is_docker_based=True)
    first, second = container.phases.order_by("pk")
    assert [first.codename, second.codename] == ["container", "heldout"]
    (line,) = [line for line in lines if line.startswith("Demo model")]
    assert f"/models/{model.pk}/" in line and all(f"--phase {p.pk}" in line for p in (first, second)), line

    participant = model.team.memberships.get().user
    client.force_login(participant)
    accepted = client.post(reverse("web:accept-terms", args=[container.pk]), {"accept_terms": "on"})
    assert accepted.status_code == 302, accepted.content
    worker = inprocess_worker.start(live_server.url)
    try:
        # phase 1 from the CLI: nothing uploaded, the server submits the stored version; --wait follows it
        run("login", "--server", live_server.url, "-u", participant.username, "--password", PASSWORD)
        out = run("models", "submit", str(model.pk), "--phase", str(first.pk), "--public", "--wait", "--json")
        by_cli = json.loads(out[out.index("{") :])  # --wait's progress lines come first
        assert by_cli["status"] == "finished", by_cli
        # phase 2 from the model's web page: its form offers the second phase
        page = client.get(reverse("web:model", args=[model.pk])).content.decode()
        assert f'<option value="{second.pk}">' in page
        posted = client.post(
            reverse("web:model-submit", args=[model.pk]),
            {"version": str(version.number), "phase": str(second.pk), "is_public": "yes"},
            follow=True,
        )
        assert "submitted to" in posted.content.decode()
        by_web = Submission.objects.exclude(pk=by_cli["id"]).get(model_source__version=version)
        assert by_web.phase_id == second.pk
        assert _finished(by_web.pk) == {"status": "finished", "failure": ""}
    finally:
        worker.stop()

    subs = {first.pk: Submission.objects.get(pk=by_cli["id"]), second.pk: by_web}
    for phase_pk, sub in subs.items():
        assert sub.phase_id == phase_pk and sub.input_file.name == version.file.name  # the stored file, no copy
        assert sub.image_digest == version.image_digest
        assert LeaderboardEntry.objects.get(submission=sub).result == {"Accuracy": 1.0, "MAE": 0.0}
    assert ModelSubmission.objects.filter(version=version).count() == 2

    # the model's results: the API, the CLI and the web page list both, each linked to its leaderboard entry
    api = {r["submission"]: r for r in client.get(f"/api/v1/models/{model.pk}/results").json()["results"]}
    assert set(api) == {s.pk for s in subs.values()}
    for sub in subs.values():
        row = api[sub.pk]
        assert row["phase_codename"] == sub.phase.codename and row["status"] == "finished"
        assert row["output"]["result"] == [{"public": {"Accuracy": 1.0, "MAE": 0.0}}]
        split = sub.phase.phase_splits.get()
        assert row["leaderboard_url"] == f"/challenges/{container.pk}/leaderboard?split={split.pk}#entry-{sub.pk}"
        assert row["audit_url"] == ""  # the demo's phases are not audited
        board = client.get(row["leaderboard_url"].split("#")[0]).content.decode()
        assert f'id="entry-{sub.pk}"' in board  # the link's anchor is the entry's row
    shown = json.loads(run("models", "show", str(model.pk), "--json"))
    assert {(r["submission"], r["phase_codename"], r["status"]) for r in shown["results"]} == {
        (s.pk, s.phase.codename, "finished") for s in subs.values()
    }
    html = client.get(reverse("web:model", args=[model.pk])).content.decode()
    for sub in subs.values():
        assert f"#entry-{sub.pk}" in html and sub.phase.name in html
    assert html.count("Leaderboard</a>") == 2 and "Audit report" not in html
