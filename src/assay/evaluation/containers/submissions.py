"""EvalAI's two code-upload submission kinds, as functions over a :class:`ContainerBackend`.

Static dataset (EvalAI ``is_static_dataset_code_upload``)
    The participant's image reads the phase's test *inputs* (never the labels) read-only at
    ``/input`` and writes its predictions to ``/output/submission.json`` or ``.csv`` (the folder is
    also in ``$SUBMISSION_PATH``, EvalAI's convention). :func:`run_static_dataset` returns that file;
    the worker then scores it with the phase's ordinary evaluation script, exactly like an uploaded
    prediction file.

Agent ↔ environment (EvalAI's RL pods)
    The host's environment image and the participant's agent image run side by side on a private
    loopback-only network (the agent reaches the environment at ``127.0.0.1``; nothing else is
    reachable). The environment alone receives a per-job secret in ``$ASSAY_RESULT_SECRET`` and
    reports ``{"secret": …, "result": [{split: {metric: number}}], …}`` either to
    ``$ASSAY_RESULT_PATH`` (``/output/result.json``, a folder the agent never sees) or as the last
    JSON line on its stdout. The runner accepts the result only with the right secret, so an agent
    that gets text echoed into the environment's logs cannot forge a score.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract import ErrorKind, EvaluationOutcome, validate_output
from ..handles import RunHandle
from ..limits import EvaluationLimits, memory_message, timeout_message
from .contract import OUTPUT_PATH, ContainerBackend, ContainerOutcome, ContainerRun

#: Where the participant's predictions may be written, first match wins (EvalAI's make_submission.sh).
SUBMISSION_FILES = ("submission.json", "submission.csv")
INPUT_PATH = "/input"
RESULT_FILE = "result.json"
SECRET_ENV = "ASSAY_RESULT_SECRET"
_MAX_RESULT_BYTES = 4 * 1024**2


@dataclass
class StaticRun:
    """The participant container's run; ``predictions`` is the file to score when it succeeded."""

    predictions: Path | None
    outcome: ContainerOutcome
    error: str | None
    error_kind: ErrorKind | None
    sandbox: str

    @property
    def ok(self) -> bool:
        return self.predictions is not None

    def failure(self) -> EvaluationOutcome | None:
        """The failed run as the worker reports any evaluation (None when there is something to score)."""
        if self.ok:
            return None
        return EvaluationOutcome(
            ok=False, output=None, stdout=self.outcome.stdout, stderr=self.outcome.stderr, error=self.error,
            error_kind=self.error_kind, duration=self.outcome.duration, sandbox=self.sandbox,
        )  # fmt: skip


def container_failure(outcome: ContainerOutcome, limits: EvaluationLimits, who: str) -> tuple[str, ErrorKind] | None:
    """Why a container run failed, in the participant-facing words of ``limits``; None if it exited 0.

    Only the engine's facts are used, never the container's own output: a participant's message
    could carry test inputs out (Grand Challenge's rule).
    """
    if outcome.error:
        return f"the {who} could not run: {outcome.error}", "setup"
    if outcome.timed_out:
        return timeout_message(limits, f" ({who})"), "timeout"
    if outcome.oom_killed:
        return memory_message(limits, f" in the {who}"), "memory"
    if outcome.exit_code != 0:
        return f"the {who} exited with code {outcome.exit_code}", "crash"
    return None


def _regular_file(path: Path, max_bytes: int | None = None) -> str | None:
    """Why ``path`` (written by a container) may not be read by the worker, or None.

    A container can leave a symlink in its output folder pointing anywhere on the host.
    """
    try:
        stat = path.lstat()
    except FileNotFoundError:
        return "missing"
    if path.is_symlink() or not path.is_file():
        return f"/output/{path.name} must be a regular file, not a link or a folder"
    if max_bytes is not None and stat.st_size > max_bytes:
        return f"/output/{path.name} is larger than {max_bytes} bytes"
    return None


def run_static_dataset(
    backend: ContainerBackend,
    image: str,
    test_inputs: Path,
    workdir: Path,
    *,
    limits: EvaluationLimits | None = None,
    command: Sequence[str] | None = None,
    cpus: float = 1.0,
    env: Mapping[str, str] | None = None,
    submission_files: Sequence[str] = SUBMISSION_FILES,
    who: str = "participant container",
    handle: RunHandle | None = None,
) -> StaticRun:
    """Run the participant's ``image`` over the test inputs and return its predictions file.

    ``test_inputs`` (a folder, or one file) is mounted read-only at ``/input`` (a file keeps its name
    inside it); ``workdir`` must be a fresh private folder, the output lands in ``workdir/output``.
    ``who`` names what ran in failure messages (a code bundle is no container); ``handle`` stops this run alone.
    """
    limits = limits or EvaluationLimits()
    test_inputs = Path(test_inputs).resolve()
    target = INPUT_PATH if test_inputs.is_dir() else f"{INPUT_PATH}/{test_inputs.name}"
    output = Path(workdir) / "output"
    run = ContainerRun(
        image=image, command=command, inputs={test_inputs: target}, output_dir=output, limits=limits,
        env={"SUBMISSION_PATH": OUTPUT_PATH, "INPUT_PATH": INPUT_PATH, **(env or {})}, cpus=cpus, name="submission",
    )  # fmt: skip
    outcome = backend.run(run, handle)
    failed = container_failure(outcome, limits, who)  # "the participant container exited with code 1"
    if failed:
        return StaticRun(None, outcome, failed[0], failed[1], backend.describe())
    for name in submission_files:
        why = _regular_file(output / name)
        if why is None:
            return StaticRun(output / name, outcome, None, None, backend.describe())
        if why != "missing":
            return StaticRun(None, outcome, why, "bad_output", backend.describe())
    expected = " or ".join(f"{OUTPUT_PATH}/{n}" for n in submission_files)
    return StaticRun(None, outcome, f"the container wrote no {expected}", "bad_output", backend.describe())


def _authenticated(document: Any, secret: str) -> dict[str, Any] | None:
    if not isinstance(document, dict) or not isinstance(document.get("secret"), str):
        return None
    if not hmac.compare_digest(document["secret"].encode(), secret.encode()):
        return None
    output = {k: v for k, v in document.items() if k != "secret"}
    if isinstance(output.get("result"), dict):  # {"result": {split: metrics}} → EvalAI's list form
        output["result"] = [{split: metrics} for split, metrics in output["result"].items()]
    return output


def read_environment_result(result_file: Path, stdout: str, secret: str) -> tuple[dict[str, Any] | None, str | None]:
    """The environment's authenticated result (file first, then stdout's JSON lines, last first)."""
    candidates: list[Any] = []
    why = _regular_file(result_file, _MAX_RESULT_BYTES)
    if why is None:
        try:
            candidates.append(json.loads(result_file.read_bytes()))
        except ValueError:
            return None, f"the environment's {OUTPUT_PATH}/{RESULT_FILE} is not valid JSON"
    elif why != "missing":
        return None, f"the environment's result is unusable: {why}"
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"secret"' in line:
            try:
                candidates.append(json.loads(line))
            except ValueError:
                continue
    if not candidates:
        return None, "the environment reported no result (write it to $ASSAY_RESULT_PATH or print it as JSON)"
    for document in candidates:
        output = _authenticated(document, secret)
        if output is not None:
            return output, None
    return None, "the environment's result is not authenticated (missing or wrong secret); it was ignored"


def run_environment(
    backend: ContainerBackend,
    environment_image: str,
    agent_image: str,
    workdir: Path,
    *,
    limits: EvaluationLimits | None = None,
    agent_limits: EvaluationLimits | None = None,
    environment_inputs: Mapping[Path, str] | None = None,
    environment_command: Sequence[str] | None = None,
    agent_command: Sequence[str] | None = None,
    environment_env: Mapping[str, str] | None = None,
    agent_env: Mapping[str, str] | None = None,
    cpus: float = 1.0,
    handle: RunHandle | None = None,
) -> EvaluationOutcome:
    """Run the host's environment against the participant's agent; the environment's verified result.

    ``limits`` bound the environment and the whole run (its wall clock ends the agent too);
    ``agent_limits`` default to the same. ``environment_inputs`` (host path → container path,
    read-only) are for the environment only, e.g. hidden episodes. The returned outcome has the
    shape of any evaluation, so the worker completes the submission with it directly. ``handle`` stops
    this pair alone.
    """
    limits = limits or EvaluationLimits()
    agent_limits = agent_limits or limits
    secret = secrets.token_hex(32)
    env_output = Path(workdir) / "environment-output"
    environment = ContainerRun(
        image=environment_image, command=environment_command, inputs=dict(environment_inputs or {}),
        output_dir=env_output, limits=limits, network="internal", cpus=cpus, name="environment",
        env={
            **(environment_env or {}), SECRET_ENV: secret, "ASSAY_RESULT_PATH": f"{OUTPUT_PATH}/{RESULT_FILE}",
            "SUBMISSION_TIME_LIMIT": f"{limits.wall_seconds:g}",
        },
    )  # fmt: skip
    agent = ContainerRun(
        image=agent_image, command=agent_command, limits=agent_limits, network="internal", cpus=cpus, name="agent",
        env={**(agent_env or {}), "ENVIRONMENT_HOST": "127.0.0.1"},
    )  # fmt: skip
    env_outcome, agent_outcome = backend.run_together([environment, agent], handle)

    def redact(text: str) -> str:
        return text.replace(secret, "[secret]")

    stdout = redact(f"--- environment ---\n{env_outcome.stdout}\n--- agent ---\n{agent_outcome.stdout}")
    stderr = redact(f"--- environment ---\n{env_outcome.stderr}\n--- agent ---\n{agent_outcome.stderr}")
    output: dict[str, Any] | None = None
    failed = container_failure(env_outcome, limits, "environment container")
    if failed is None:
        output, why = read_environment_result(env_output / RESULT_FILE, env_outcome.stdout, secret)
        invalid = validate_output(output, function="the environment's result") if output is not None else why
        if invalid:
            failed = (invalid, "bad_output")
    if failed is not None:
        agent_failed = container_failure(agent_outcome, agent_limits, "agent container")
        if agent_failed and not agent_outcome.stopped and agent_failed[1] != "timeout":
            failed = (f"{failed[0]}; {agent_failed[0]}", failed[1])  # the likely cause, for the participant
    return EvaluationOutcome(
        ok=failed is None, output=output if failed is None else None, stdout=stdout, stderr=stderr,
        error=failed[0] if failed else None, error_kind=failed[1] if failed else None,
        duration=env_outcome.duration, sandbox=backend.describe(),
    )  # fmt: skip
