"""The CLI against a live server and a real worker: a participant's ``assay submit --wait``,
``assay submission``, ``assay submissions`` and ``assay result`` never print the demo Test phase's
private split (visibility 1); the host's ``assay submission`` does."""

from __future__ import annotations

import json
import re

import pytest

from .test_client import SUBMISSIONS, _worker, run  # noqa: F401  (run is a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_participant_cli_never_prints_the_private_split(live_server, world, users, run, tmp_path):  # noqa: F811
    url = live_server.url
    test = world["challenge"].phases.get(codename="test")
    run("login", "--server", url, "-u", "alice", "--password", "pw")
    thread = _worker(url, jobs=1, workdir=tmp_path / "worker")
    out = run("submit", str(SUBMISSIONS / "test_all_even.json"), "--phase", str(test.pk), "--wait")
    thread.join(timeout=120)
    # PostgreSQL's jsonb keeps labels in its own order (F1 before Accuracy): look for the label on the split's line
    assert "finished" in out and re.search(r"public: .*Accuracy", out)
    assert "private" not in out

    from assay.server.submissions.models import Submission

    sub = Submission.objects.get(phase=test)
    private = next(item["private"] for item in sub.output["result"] if "private" in item)  # the real scores
    secret = f"{private['F1']:.4f}"

    shown = json.loads(run("submission", str(sub.pk), "--json"))
    assert [list(item) for item in shown["output"]["result"]] == [["public"]]
    for args in (("submission", str(sub.pk)), ("submissions", "--phase", str(test.pk)), ("result", str(sub.pk))):
        text = run(*args)
        assert "private" not in text and secret not in text, args
    # the script's own document (its submission_result) may quote hidden splits: the team gets the visible ones
    assert [list(item) for item in json.loads(run("result", str(sub.pk)))] == [["public"]]

    run("login", "--server", url, "-u", "host1", "--password", "pw")
    host_view = run("submission", str(sub.pk))
    assert re.search(r"private: .*Accuracy", host_view) and re.search(r"public: .*Accuracy", host_view)
    assert list(json.loads(run("result", str(sub.pk)))) == ["public"]  # the demo script's document, as it wrote it
