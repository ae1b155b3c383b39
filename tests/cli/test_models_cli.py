"""``assay models push|list|show|submit`` against a live server (issue 16 item 1): a code bundle registered
once with its card, a second push of the same name adds version 2 (version 1 kept), and ``submit`` sends no
file — the submission names the stored version's bytes."""

from __future__ import annotations

import json
import zipfile

import pytest

from tests.cli.test_client import run  # noqa: F401  (the CLI runner fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def bundle(path, text: str):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("run.sh", text)
    return path


def test_push_list_show_and_submit_a_model(live_server, world, run, tmp_path):  # noqa: F811
    from assay.server.challenges.models import Challenge
    from assay.server.submissions.models import Submission

    challenge = world["challenge"]
    Challenge.objects.filter(pk=challenge.pk).update(is_docker_based=True, is_static_dataset_code_upload=True)
    run("login", "--server", live_server.url, "-u", "alice", "--password", "pw")
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"intended_use": "Counting.", "licence": "MIT"}))
    first = json.loads(run("models", "push", str(bundle(tmp_path / "a.zip", "echo 1")), "--name", "counter",
                           "--card", str(card), "--label", "1.0", "--json"))  # fmt: skip
    assert first["pushed"]["number"] == 1 and first["intended_use"] == "Counting."
    second = json.loads(run("models", "push", str(bundle(tmp_path / "b.zip", "echo 2")), "--name", "counter", "--json"))
    assert second["id"] == first["id"] and [v["number"] for v in second["versions"]] == [2, 1]
    listed = json.loads(run("models", "list", "--json"))
    assert [m["name"] for m in listed] == ["counter"]
    assert "counter" in run("models", "list")

    before = Submission.objects.count()
    sub = json.loads(run("models", "submit", str(first["id"]), "--phase", "dev", "--challenge", str(challenge.pk),
                         "--json"))  # fmt: skip
    assert Submission.objects.count() == before + 1
    assert sub["input_file_sha256"] == second["pushed"]["file_sha256"]  # the newest version, not uploaded again
    shown = json.loads(run("models", "show", str(first["id"]), "--json"))
    assert [r["submission"] for r in shown["results"]] == [sub["id"]]
    out = run("models", "submit", str(first["id"]), "--phase", "dev", "--challenge", str(challenge.pk),
              "--version", "9", code=1)  # fmt: skip
    assert "no such version" in out
    out = run("models", "push", str(tmp_path / "card.json"), "--name", "x", code=2)
    assert "neither an image tarball" in out
