"""Rules every backend shares, checked without an engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.evaluation.containers import ContainerRun, UnsafeRun, is_root_user, read_environment_result
from assay.evaluation.containers.contract import ContainerOutcome, numeric_user, tail_text
from assay.evaluation.containers.submissions import container_failure
from assay.evaluation.limits import EvaluationLimits


@pytest.mark.parametrize(
    ("user", "root"),
    [("", True), ("root", True), ("0", True), ("0:0", True), ("root:staff", True), (" 0 ", True),
     ("1000", False), ("1000:0", False), ("player", False), ("65534:65534", False)],
)  # fmt: skip
def test_root_users_as_grand_challenge_defines_them(user: str, root: bool) -> None:
    assert is_root_user(user) is root


def test_numeric_users() -> None:
    assert numeric_user("1000:1001") == (1000, 1001)
    assert numeric_user("1000") == (1000, None)
    assert numeric_user("player") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"user": "root"}, "never run as root"), ({"network": "host"}, "network must be"),
     ({"name": "Bad_Name"}, "DNS label"), ({"inputs": {Path("/x"): "/output"}}, "mount point"),
     ({"inputs": {Path("/x"): "relative"}}, "mount point"), ({"cpus": 0}, "cpus")],
)  # fmt: skip
def test_unsafe_runs_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(UnsafeRun, match=message):
        ContainerRun(image="i", **kwargs)


def test_tail_text_keeps_the_end() -> None:
    assert tail_text(b"short", 10) == "short"
    text = tail_text(b"x" * 100 + b"END", 10)
    assert text.endswith("x" * 7 + "END") and "first 93 bytes cut" in text


def test_environment_result_rules(tmp_path: Path) -> None:
    result = tmp_path / "result.json"
    good = {"secret": "s3", "result": [{"test": {"a": 1}}], "submission_result": {"x": 1}}
    assert read_environment_result(result, json.dumps(good), "s3") == (
        {"result": [{"test": {"a": 1}}], "submission_result": {"x": 1}},
        None,
    )
    assert read_environment_result(result, json.dumps(good), "other")[1] == (
        "the environment's result is not authenticated (missing or wrong secret); it was ignored"
    )
    assert "reported no result" in (read_environment_result(result, "hello", "s3")[1] or "")
    # the file wins over stdout; a forged line later on stdout does not matter
    result.write_text(json.dumps({"secret": "s3", "result": {"test": {"a": 2}}}))
    forged = json.dumps({"secret": "nope", "result": [{"test": {"a": 99}}]})
    assert read_environment_result(result, forged, "s3") == ({"result": [{"test": {"a": 2}}]}, None)
    result.unlink()
    result.symlink_to("/etc/passwd")
    assert "regular file" in (read_environment_result(result, json.dumps(good), "s3")[1] or "")


def test_container_failures_use_the_limit_words() -> None:
    limits = EvaluationLimits(wall_seconds=5, memory_bytes=64 * 1024**2)

    def outcome(**kw: object) -> ContainerOutcome:
        base: dict = dict(
            exit_code=0, oom_killed=False, timed_out=False, stdout="", stderr="", duration=1, image_digest=None
        )
        return ContainerOutcome(**{**base, **kw})

    assert container_failure(outcome(), limits, "x") is None
    assert container_failure(outcome(timed_out=True, exit_code=137), limits, "x") == (
        "evaluation exceeded the 5 s time limit (x)",
        "timeout",
    )
    assert container_failure(outcome(oom_killed=True, exit_code=137), limits, "x")[1] == "memory"  # type: ignore[index]
    assert container_failure(outcome(exit_code=3), limits, "x") == ("the x exited with code 3", "crash")
    assert container_failure(outcome(error="no such image"), limits, "x") == (
        "the x could not run: no such image",
        "setup",
    )
