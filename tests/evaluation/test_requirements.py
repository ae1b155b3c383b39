"""requirements.txt: a cached per-script venv, built outside the sandbox, used inside it."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

from assay.evaluation import EvaluatorPool, venvs
from assay.evaluation.venvs import environments_dir, pip_environment

from .conftest import job_for


def _six_version_not_in_worker() -> str:
    """A six release neither the worker nor the base interpreter has, so the script's venv must install it.

    The script's venv sees the base interpreter's packages too (``--system-site-packages``); a version
    already there would satisfy pip without installing anything into the venv.
    """
    probe = "import importlib.metadata as m\ntry:\n    print(m.version('six'))\nexcept Exception:\n    print('')"
    present = set()
    for python in {sys.executable, getattr(sys, "_base_executable", sys.executable)}:
        try:
            run = subprocess.run([python, "-I", "-c", probe], capture_output=True, text=True, timeout=30)
            present.add(run.stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            pass
    return next(v for v in ("1.17.0", "1.16.0", "1.15.0") if v not in present)


SIX = _six_version_not_in_worker()
SIX_SCRIPT = {
    "requirements.txt": f"six=={SIX}\n",
    "__init__.py": """
        import sys

        import six

        def evaluate(*args, **kwargs):
            return {
                "result": [{"s": {"ok": 1}}],
                "submission_result": {"six": six.__version__, "file": six.__file__, "prefix": sys.prefix},
            }
    """,
}


@functools.lru_cache(maxsize=1)
def _index_unreachable() -> str | None:
    """Why pip cannot fetch ``six`` here (quickly), or None when it can."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        try:
            run = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, f"six=={SIX}"],
                capture_output=True,
                text=True,
                timeout=30,
                env={**pip_environment(), "PIP_DEFAULT_TIMEOUT": "5", "PIP_RETRIES": "0"},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"pip cannot reach a package index: {exc}"
    if run.returncode != 0:
        return f"pip cannot reach a package index: {run.stderr.strip()[-200:]}"
    return None


def test_requirements_are_installed_into_a_cached_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = _index_unreachable()
    if reason:
        pytest.skip(reason)
    with EvaluatorPool(workdir=tmp_path / "work") as pool:
        outcome = pool.evaluate(job_for(tmp_path, SIX_SCRIPT))
        assert outcome.ok, (outcome.error, outcome.stderr)
        info = outcome.output["submission_result"]
        assert info["six"] == SIX
        # The script ran with a layer on the evaluation environment, in the machine-wide cache.
        layer = Path(info["prefix"])
        assert layer.parent == environments_dir() / "layers" and (layer / ".assay-ready").exists()
        assert info["file"].startswith(str(layer))
        assert SIX in (layer / "assay-requirements.txt").read_text()
    # The worker's own environment is untouched.
    check = (
        "import importlib.metadata as m, sys\n"
        "try:\n    v = m.version('six')\nexcept m.PackageNotFoundError:\n    v = None\n"
        "sys.exit(1 if v == sys.argv[1] else 0)"
    )
    assert subprocess.run([sys.executable, "-c", check, SIX], capture_output=True).returncode == 0

    # A second pool (another workdir: nothing memoized) reuses the machine-wide layer: no pip run, no new venv.
    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the layer was built again")

    monkeypatch.setattr(venvs, "_build_layer", no_build)
    monkeypatch.setattr(venvs, "_run", no_build)
    with EvaluatorPool(workdir=tmp_path / "other-work") as pool:
        again = pool.evaluate(job_for(tmp_path / "again", SIX_SCRIPT))
        assert again.ok, (again.error, again.stderr)
        assert again.output["submission_result"]["prefix"] == info["prefix"]


def test_broken_requirements_are_a_setup_error(tmp_path: Path) -> None:
    reason = _index_unreachable()
    if reason:
        pytest.skip(reason)
    missing = "assay-no-such-package-anywhere==0.0.1\n"
    files = {"requirements.txt": missing, "__init__.py": "def evaluate(*a, **k): pass\n"}
    with EvaluatorPool(workdir=tmp_path / "work") as pool:
        outcome = pool.evaluate(job_for(tmp_path, files))
    assert outcome.error_kind == "setup"
    assert outcome.error.startswith("the evaluation script's requirements.txt could not be installed")
    assert "assay-no-such-package-anywhere" in outcome.stderr  # pip's full output, for the host
    # A failed build leaves no environment that a later job would take for a ready one.
    layers = [p.parent for p in (environments_dir() / "layers").glob("*/assay-requirements.txt")]
    broken = [p for p in layers if missing in (p / "assay-requirements.txt").read_text()]
    assert broken and not any((p / ".assay-ready").exists() for p in broken)


def test_requirements_that_pip_would_build_are_refused_before_pip_runs(tmp_path: Path) -> None:
    """A source distribution's setup.py would run on the worker, outside the sandbox: never built."""
    marker = tmp_path / "setup-py-ran"
    package = tmp_path / "evil"
    package.mkdir()
    (package / "setup.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from setuptools import setup\nsetup(name='evil', version='1.0')\n"
    )
    for line in (str(package), f"evil @ file://{package}", f"-e {package}", "--index-url https://evil.example/"):
        files = {"requirements.txt": f"six\n{line}\n", "__init__.py": "def evaluate(*a, **k): pass\n"}
        with EvaluatorPool(workdir=tmp_path / "work") as pool:
            outcome = pool.evaluate(job_for(tmp_path / "job", files))
        assert outcome.error_kind == "setup" and "requirements.txt line 2" in outcome.error, outcome.error
        assert not marker.exists()
