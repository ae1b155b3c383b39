"""The EvalAI contract through the pool: relative imports, kwargs, warm state, every failure kind."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from assay.evaluation import EvaluationLimits, EvaluatorPool

from .conftest import ACCURACY_SCRIPT, job_for, make_zip


def test_evalai_script_with_relative_imports_runs_unchanged(pool: EvaluatorPool, tmp_path: Path) -> None:
    job = job_for(tmp_path, ACCURACY_SCRIPT, annotation={"a": 1, "b": 2}, submission={"a": 1, "b": 3})
    outcome = pool.evaluate(job)
    assert outcome.ok, outcome
    assert outcome.output == {
        "result": [{"test_split": {"accuracy": 0.5}}],
        "submission_metadata": {"id": 7, "participant_team_name": "team"},
    }
    assert "evaluating 2 predictions for dev" in outcome.stdout
    assert outcome.error is None and outcome.error_kind is None
    assert outcome.sandbox


def test_nested_top_level_folder_is_accepted(pool: EvaluatorPool, tmp_path: Path) -> None:
    nested = {f"evaluation_script/{k}": v for k, v in ACCURACY_SCRIPT.items()}
    outcome = pool.evaluate(job_for(tmp_path, nested, annotation={"a": 1}, submission={"a": 1}))
    assert outcome.ok, outcome
    assert outcome.output["result"] == [{"test_split": {"accuracy": 1.0}}]


WARM_SCRIPT = {
    "__init__.py": """
        from .main import evaluate, warm_up  # an expensive import (a big library) in real scripts
    """,
    "main.py": """
        import json

        CALLS = []  # a new import would start these afresh
        WARM_UPS = []


        def warm_up(test_annotation_file, phase_codename):
            WARM_UPS.append(1)  # parsing a large annotation file, in real scripts
            with open(test_annotation_file) as fh:
                return {"truth": json.load(fh), "phase": phase_codename}


        def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
            CALLS.append(1)
            state = kwargs["warm_state"]
            with open(user_submission_file) as fh:
                sub = json.load(fh)
            hits = sum(sub.get(k) == v for k, v in state["truth"].items())
            counts = {"hits": hits, "calls": len(CALLS), "warm_ups": len(WARM_UPS)}
            return {"result": [{"s": counts}], "submission_result": state["phase"]}
    """,
}


def test_warm_up_runs_once_and_warm_evaluations_skip_import_and_parse(pool: EvaluatorPool, tmp_path: Path) -> None:
    job = job_for(tmp_path, WARM_SCRIPT, annotation={"x": 1, "y": 2}, submission={"x": 1, "y": 0})
    cold = pool.evaluate(job)
    assert cold.ok, cold
    assert cold.warm is False
    assert cold.output["result"] == [{"s": {"hits": 1, "calls": 1, "warm_ups": 1}}]
    warm = pool.evaluate(dataclasses.replace(job, submission_metadata={"id": 8}))
    assert warm.ok, warm
    assert warm.warm is True
    # the same module (its CALLS went on: no re-import) and the same warm state (warm_up ran once: no re-parse)
    assert warm.output["result"] == [{"s": {"hits": 1, "calls": 2, "warm_ups": 1}}]
    assert warm.output["submission_result"] == "dev"


def test_scripts_without_warm_up_get_no_warm_state(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {
        "__init__.py": """
            def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
                return {"result": [{"s": {"n": len(kwargs)}}], "submission_result": sorted(kwargs)}
        """
    }
    outcome = pool.evaluate(job_for(tmp_path, files))
    assert outcome.ok, outcome
    assert outcome.output["submission_result"] == ["submission_metadata"]


def test_no_annotation_file_passes_none(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {
        "__init__.py": """
            def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
                return {"result": [{"s": {"none": int(test_annotation_file is None)}}]}
        """
    }
    job = dataclasses.replace(job_for(tmp_path, files), annotation_file=None)
    outcome = pool.evaluate(job)
    assert outcome.ok, outcome
    assert outcome.output["result"] == [{"s": {"none": 1}}]


def test_evaluate_raising_is_a_script_error_with_traceback(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {
        "__init__.py": "from .main import evaluate\n",
        "main.py": """
            def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
                print("about to fail")
                raise ValueError("submission has 3 rows, expected 5")
        """,
    }
    outcome = pool.evaluate(job_for(tmp_path, files))
    assert not outcome.ok
    assert outcome.error_kind == "script_error"
    assert outcome.error == "evaluate() raised ValueError: submission has 3 rows, expected 5"
    assert "Traceback (most recent call last)" in outcome.stderr
    assert "main.py" in outcome.stderr
    assert "about to fail" in outcome.stdout
    assert outcome.output is None
    # The evaluator survives an exception and stays warm.
    again = pool.evaluate(job_for(tmp_path, files))
    assert again.warm is True and again.error_kind == "script_error"


def test_sys_exit_in_evaluate_is_a_script_error(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {
        "__init__.py": """
            import sys
            def evaluate(*args, **kwargs):
                sys.exit(3)
        """
    }
    outcome = pool.evaluate(job_for(tmp_path, files))
    assert outcome.error_kind == "script_error"
    assert "sys.exit(3)" in outcome.error


def test_non_json_output_is_bad_output(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {
        "__init__.py": """
            def evaluate(*args, **kwargs):
                return {"result": [{"s": {"acc": object()}}]}
        """
    }
    outcome = pool.evaluate(job_for(tmp_path, files))
    assert not outcome.ok
    assert outcome.error_kind == "bad_output"
    assert "not JSON-serialisable" in outcome.error


def test_missing_result_key_is_bad_output(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {"__init__.py": "def evaluate(*a, **k):\n    return {'accuracy': 1}\n"}
    outcome = pool.evaluate(job_for(tmp_path, files))
    assert outcome.error_kind == "bad_output"
    assert outcome.error == "evaluate() returned no 'result' key"


def test_non_numeric_metric_is_bad_output(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {"__init__.py": "def evaluate(*a, **k):\n    return {'result': [{'test': {'acc': 'high'}}]}\n"}
    outcome = pool.evaluate(job_for(tmp_path, files))
    assert outcome.error_kind == "bad_output"
    assert "split 'test' metric 'acc' = 'high', which is not a number" in outcome.error


def test_import_error_is_a_setup_error(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {"__init__.py": "from phase_1.main import evaluate  # absolute import: EvalAI#4387\n"}
    outcome = pool.evaluate(job_for(tmp_path, files))
    assert outcome.error_kind == "setup"
    assert "importing the evaluation script failed: ModuleNotFoundError" in outcome.error
    assert "Traceback" in outcome.stderr


def test_missing_evaluate_is_a_setup_error(pool: EvaluatorPool, tmp_path: Path) -> None:
    outcome = pool.evaluate(job_for(tmp_path, {"__init__.py": "X = 1\n"}))
    assert outcome.error_kind == "setup"
    assert "does not define evaluate()" in outcome.error


def test_unsafe_zip_is_a_setup_error(pool: EvaluatorPool, tmp_path: Path) -> None:
    outcome = pool.evaluate(job_for(tmp_path, {"__init__.py": "", "../escape.py": "x = 1"}))
    assert outcome.error_kind == "setup"
    assert "unsafe" in outcome.error
    assert not (tmp_path / "escape.py").exists()


def test_segfault_is_a_crash_and_the_next_job_works(pool: EvaluatorPool, tmp_path: Path) -> None:
    crash = {
        "__init__.py": """
            import ctypes

            def evaluate(*args, **kwargs):
                ctypes.string_at(0)
        """
    }
    outcome = pool.evaluate(job_for(tmp_path / "crash", crash, key="same"))
    assert outcome.error_kind == "crash"
    assert "SIGSEGV" in outcome.error
    assert "Fatal Python error" in outcome.stderr  # faulthandler shows where it happened
    good = pool.evaluate(job_for(tmp_path / "good", ACCURACY_SCRIPT, key="other"))
    assert good.ok, good
    # The crashed evaluator was replaced, not reused.
    again = pool.evaluate(job_for(tmp_path / "crash", crash, key="same"))
    assert again.error_kind == "crash" and again.warm is False


def test_os_exit_and_sigkill_are_crashes(pool: EvaluatorPool, tmp_path: Path) -> None:
    exits = {"__init__.py": "import os\ndef evaluate(*a, **k):\n    os._exit(4)\n"}
    outcome = pool.evaluate(job_for(tmp_path / "exit", exits))
    assert outcome.error_kind == "crash"
    assert "exit code 4" in outcome.error
    kills = {"__init__.py": "import os, signal\ndef evaluate(*a, **k):\n    os.kill(os.getpid(), signal.SIGKILL)\n"}
    outcome = pool.evaluate(job_for(tmp_path / "kill", kills))
    assert outcome.error_kind == "crash"
    assert "SIGKILL" in outcome.error
    assert pool.evaluate(job_for(tmp_path / "good", ACCURACY_SCRIPT)).ok


def test_forked_child_returning_from_evaluate_cannot_answer(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {
        "__init__.py": """
            import os

            def evaluate(*args, **kwargs):
                pid = os.fork()  # no os._exit in the child: it returns into the evaluator loop
                if pid:
                    os.waitpid(pid, 0)
                return {"result": [{"s": {"parent": int(pid != 0)}}]}
        """
    }
    job = job_for(tmp_path, files)
    for _ in range(2):
        outcome = pool.evaluate(job)
        assert outcome.ok, outcome
        assert outcome.output["result"] == [{"s": {"parent": 1}}]


def test_infinite_loop_times_out_and_pool_recovers(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {"__init__.py": "def evaluate(*a, **k):\n    while True:\n        pass\n"}
    limits = EvaluationLimits(wall_seconds=2, cpu_seconds=60, memory_bytes=1024**3)
    outcome = pool.evaluate(job_for(tmp_path / "loop", files, limits=limits))
    assert outcome.error_kind == "timeout"  # raised by the pool's wall clock: the loop never returns
    assert outcome.error == "evaluation exceeded the 2 s time limit"
    assert pool.evaluate(job_for(tmp_path / "good", ACCURACY_SCRIPT)).ok


def test_cpu_limit_applies_per_evaluation_in_a_warm_process(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {
        "__init__.py": """
            import json, time

            def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
                seconds = json.load(open(user_submission_file))["burn"]
                end = time.process_time() + seconds
                while time.process_time() < end:
                    pass
                return {"result": [{"s": {"burnt": seconds}}]}
        """
    }
    limits = EvaluationLimits(wall_seconds=20, cpu_seconds=1, memory_bytes=1024**3)
    # Three 0.6 s evaluations in one warm process: 1.8 s in total, but each is within its own 1 s.
    for _ in range(3):
        outcome = pool.evaluate(job_for(tmp_path, files, submission={"burn": 0.6}, limits=limits, key="cpu"))
        assert outcome.ok, outcome
        assert outcome.warm or _ == 0
    outcome = pool.evaluate(job_for(tmp_path, files, submission={"burn": 5.0}, limits=limits, key="cpu"))
    assert outcome.error_kind == "timeout"
    assert outcome.error == "evaluation exceeded the 1 s CPU time limit"


def test_cpu_limit_holds_when_the_script_lifts_its_rlimit(pool: EvaluatorPool, tmp_path: Path) -> None:
    """The parent measures the sandbox's CPU time itself; RLIMIT_CPU is only the polite first line."""
    files = {
        "__init__.py": """
            import resource, signal, time

            def evaluate(*args, **kwargs):
                signal.signal(signal.SIGXCPU, signal.SIG_IGN)
                hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
                resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
                while True:
                    pass
        """
    }
    limits = EvaluationLimits(wall_seconds=20, cpu_seconds=1, memory_bytes=1024**3)
    outcome = pool.evaluate(job_for(tmp_path, files, limits=limits))
    assert outcome.error_kind == "timeout"
    assert outcome.error == "evaluation exceeded the 1 s CPU time limit"  # the CPU guard, not the 20 s wall clock


def test_lru_eviction_keeps_at_most_max_warm(tmp_path: Path) -> None:
    with EvaluatorPool(workdir=tmp_path / "work", max_warm=2) as pool:
        jobs = [job_for(tmp_path / f"s{i}", ACCURACY_SCRIPT, key=f"key{i}") for i in range(3)]
        for job in jobs:
            assert pool.evaluate(job).ok
        assert pool.warm_count() == 2
        assert pool.warm_count("key0") == 0  # least recently used went first
        assert pool.evaluate(jobs[2]).warm is True
        assert pool.evaluate(jobs[0]).warm is False


def test_close_kills_every_evaluator(tmp_path: Path) -> None:
    pool = EvaluatorPool(workdir=tmp_path / "work")
    assert pool.evaluate(job_for(tmp_path, ACCURACY_SCRIPT)).ok
    procs = [ev.proc for ev in pool._idle.values()]
    assert procs and all(p.poll() is None for p in procs)
    pool.close()
    assert all(p.poll() is not None for p in procs)
    assert not pool.run_root.exists()
    assert pool.evaluate(job_for(tmp_path, ACCURACY_SCRIPT)).error_kind == "setup"


def test_output_is_capped(pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {
        "__init__.py": """
            import sys
            def evaluate(*a, **k):
                for _ in range(100):
                    print("x" * 1000)
                    sys.stderr.write("e" * 1000 + "\\n")
                return {"result": []}
        """
    }
    limits = EvaluationLimits(wall_seconds=30, max_output_bytes=10_000, memory_bytes=1024**3)
    outcome = pool.evaluate(job_for(tmp_path, files, limits=limits))
    assert outcome.ok, outcome
    assert outcome.output == {"result": []}
    for text in (outcome.stdout, outcome.stderr):
        assert len(text) < 10_200
        assert "[truncated 90100 bytes" in text


def test_make_zip_helper_roundtrip(tmp_path: Path) -> None:
    import zipfile

    path = make_zip(tmp_path, {"__init__.py": "x = 1\n"})
    assert zipfile.ZipFile(path).namelist() == ["__init__.py"]


def test_evaluators_started_in_short_lived_threads_stay_warm(pool: EvaluatorPool, tmp_path: Path) -> None:
    """bwrap's --die-with-parent follows the starting *thread*; the pool must not tie evaluators to it."""
    import threading

    job = job_for(tmp_path, ACCURACY_SCRIPT)
    results = []
    thread = threading.Thread(target=lambda: results.append(pool.evaluate(job)))
    thread.start()
    thread.join()
    assert results[0].ok
    time.sleep(0.2)
    again = pool.evaluate(job)
    assert again.ok and again.warm, again


def test_unreadable_inputs_are_copied_for_the_sandbox_user(pool: EvaluatorPool, tmp_path: Path) -> None:
    job = job_for(tmp_path, ACCURACY_SCRIPT, annotation={"a": 1}, submission={"a": 1})
    for path in (job.annotation_file, job.submission_file):
        path.chmod(0o600)
    outcome = pool.evaluate(job)
    assert outcome.ok, outcome
    assert outcome.output["result"] == [{"test_split": {"accuracy": 1.0}}]
    assert job.submission_file.stat().st_mode & 0o777 == 0o600  # the originals are left as they were


def test_without_a_sandbox_limits_still_apply_and_the_reason_is_shown(tmp_path: Path, caplog) -> None:
    with EvaluatorPool(workdir=tmp_path / "work", sandbox="none") as pool:
        assert pool.evaluate(job_for(tmp_path / "ok", ACCURACY_SCRIPT)).ok
        big = {"__init__.py": "def evaluate(*a, **k):\n    x = bytearray(10 * 1024**3)\n"}
        outcome = pool.evaluate(job_for(tmp_path / "mem", big))
        assert outcome.error_kind == "memory"
        assert outcome.sandbox.startswith("none: rlimits only, not isolated (sandbox='none' was configured")
        loop = {"__init__.py": "def evaluate(*a, **k):\n    while True:\n        pass\n"}
        limits = EvaluationLimits(wall_seconds=1, memory_bytes=1024**3)
        assert pool.evaluate(job_for(tmp_path / "loop", loop, limits=limits)).error_kind == "timeout"
        crash = {"__init__.py": "import ctypes\ndef evaluate(*a, **k):\n    ctypes.string_at(0)\n"}
        assert pool.evaluate(job_for(tmp_path / "crash", crash)).error_kind == "crash"


def test_auto_falls_back_with_a_warning_and_bwrap_refuses(tmp_path: Path, monkeypatch, caplog) -> None:
    import logging

    import pytest

    from assay.evaluation import SandboxUnavailable, detect_sandbox
    from assay.evaluation import sandbox as sandbox_module

    missing = detect_sandbox("/nonexistent/bwrap")
    assert missing.backend == "none"
    assert missing.reason == "bubblewrap (/nonexistent/bwrap) is not installed"
    monkeypatch.setattr(sandbox_module, "detect_sandbox", lambda: missing)
    with caplog.at_level(logging.WARNING, logger="assay.evaluation"):
        with EvaluatorPool(workdir=tmp_path / "work", sandbox="auto") as pool:
            outcome = pool.evaluate(job_for(tmp_path, ACCURACY_SCRIPT))
    assert outcome.ok and outcome.sandbox.startswith("none: rlimits only")
    assert "this machine cannot sandbox evaluation" in caplog.text
    with pytest.raises(SandboxUnavailable):
        EvaluatorPool(workdir=tmp_path / "work2", sandbox="bwrap")


def test_a_script_folder_works_like_its_zip(pool: EvaluatorPool, tmp_path: Path) -> None:
    import textwrap

    folder = tmp_path / "evaluation_script"
    folder.mkdir()
    for name, text in ACCURACY_SCRIPT.items():
        (folder / name).write_text(textwrap.dedent(text))
    (folder / "link.py").symlink_to("/etc/passwd")  # not followed
    job = dataclasses.replace(job_for(tmp_path, ACCURACY_SCRIPT), script_zip=folder)
    outcome = pool.evaluate(job)
    assert outcome.ok, outcome
    assert outcome.output["result"] == [{"test_split": {"accuracy": 1.0}}]
    assert pool.evaluate(job).warm  # same folder contents, same warm evaluator
