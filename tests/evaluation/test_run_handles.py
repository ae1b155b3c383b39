"""One evaluation stopped alone (:class:`RunHandle`): a worker with several slots ends the job the server
said ended, and the other evaluations of the same pool go on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from assay.evaluation import EvaluationOutcome, EvaluatorPool, RunHandle
from assay.evaluation.handles import STOPPED
from tests.evaluation.conftest import job_for

# Sleeps as long as the submission says, then scores it: a long job and a short one of the same script.
SLEEPER = {
    "__init__.py": """
        import json
        import time


        def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
            with open(user_submission_file) as fh:
                seconds = json.load(fh)["sleep"]
            time.sleep(seconds)
            return {"result": [{"test_split": {"slept": seconds}}]}
    """,
}


def test_stopping_one_handle_kills_its_evaluator_alone(pool: EvaluatorPool, tmp_path: Path) -> None:
    long_job = job_for(tmp_path / "a", SLEEPER, submission={"sleep": 600}, key="sleeper")
    short_job = job_for(tmp_path / "b", SLEEPER, submission={"sleep": 8}, key="sleeper")
    handles = {"long": RunHandle("long"), "short": RunHandle("short")}
    outcomes: dict[str, EvaluationOutcome] = {}

    def evaluate(name: str, job) -> None:
        outcomes[name] = pool.evaluate(job, handles[name])

    threads = {
        name: threading.Thread(target=evaluate, args=(name, job))
        for name, job in (("long", long_job), ("short", short_job))
    }
    for thread in threads.values():
        thread.start()
    for _ in range(300):  # both evaluators started and handed their submission
        if len(pool._busy) == 2:
            break
        time.sleep(0.1)
    assert len(pool._busy) == 2 and "short" not in outcomes  # the short one is still sleeping
    processes = [ev.proc for ev in pool._busy.values()]
    handles["long"].stop()
    threads["long"].join(timeout=60)  # it sleeps 600 s: only the stop ends it
    assert not threads["long"].is_alive()
    assert not outcomes["long"].ok
    assert "short" not in outcomes or outcomes["short"].ok  # untouched by the other's stop
    threads["short"].join(timeout=60)
    assert outcomes["short"].ok, outcomes["short"].error
    assert outcomes["short"].output["result"] == [{"test_split": {"slept": 8}}]
    assert sum(p is not None and p.poll() is None for p in processes) == 1  # the short one's, kept warm
    assert pool.warm_count("sleeper") == 1


def test_a_stopped_handle_starts_nothing(pool: EvaluatorPool, tmp_path: Path) -> None:
    handle = RunHandle("cancelled")
    handle.stop()
    outcome = pool.evaluate(job_for(tmp_path, SLEEPER, submission={"sleep": 0}), handle)
    assert not outcome.ok and outcome.error == STOPPED
    assert pool.started_evaluators == 0


def test_a_run_attached_after_the_stop_is_killed_at_once() -> None:
    handle = RunHandle()
    killed: list[str] = []
    detach = handle.attach(lambda: killed.append("first"))
    handle.attach(lambda: killed.append("detached"))()  # detached before the stop: not killed
    handle.stop()
    assert killed == ["first"]
    handle.stop()  # a second stop kills nothing twice
    assert killed == ["first"]
    handle.attach(lambda: killed.append("late"))
    assert killed == ["first", "late"]
    detach()  # detaching after the stop is harmless


def test_one_kill_that_fails_does_not_spare_the_others(caplog: pytest.LogCaptureFixture) -> None:
    handle = RunHandle("submission 3 attempt 1")
    killed: list[int] = []

    def broken() -> None:
        raise RuntimeError("engine gone")

    handle.attach(broken)
    handle.attach(lambda: killed.append(2))
    handle.stop()
    assert killed == [2] and handle.stopped
    assert "could not stop a run of submission 3 attempt 1" in caplog.text
