"""Evaluation environments: EvalAI's stacks, layers on them, and import-time pip installs without network.

Real pip, real venvs, the real bubblewrap sandbox. The stacks are built once per machine into the shared
cache (``make test`` builds them first; otherwise the first test here does, in a minute or two).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assay.bundle import environments, read_bundle
from assay.bundle.script_imports import import_warnings, scan_sources
from assay.evaluation import EvaluationLimits, EvaluatorPool
from assay.evaluation.scripts import zip_folder
from assay.evaluation.venvs import ensure_stack, env_python, environments_dir
from tests import corpus

from .conftest import job_for, make_zip, require_bwrap
from .test_requirements import SIX, _index_unreachable

LIMITS = EvaluationLimits(wall_seconds=120, cpu_seconds=120, memory_bytes=2 * 1024**3)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory):
    require_bwrap()
    with EvaluatorPool(workdir=tmp_path_factory.mktemp("env-pool"), sandbox="bwrap", max_warm=2) as p:
        yield p


def _evaluate(pool: EvaluatorPool, tmp_path: Path, files: dict[str, str], environment: str | None = None):
    extra = {"environment": environment} if environment else {}
    return pool.evaluate(job_for(tmp_path, files, limits=LIMITS, **extra))


def _script(body: str) -> dict[str, str]:
    return {"__init__.py": textwrap.dedent(body)}


def test_the_scientific_stack_is_there_without_requirements_and_the_worker_is_not(pool, tmp_path: Path) -> None:
    files = _script(
        """
        import importlib.util, sys
        import numpy as np, pandas as pd, sklearn, scipy, matplotlib, networkx, pycocotools, yaml, tqdm
        from sklearn.metrics import accuracy_score

        def evaluate(annotation, submission, phase, **kwargs):
            frame = pd.DataFrame({"y": [1, 0, 1, 1], "p": [1, 0, 0, 1]})
            return {
                "result": [{"split": {"accuracy": float(accuracy_score(frame.y, frame.p))}}],
                "submission_result": {
                    "numpy": np.__version__, "pandas": pd.__version__, "sklearn": sklearn.__version__,
                    "django": importlib.util.find_spec("django") is not None,
                    "assay": importlib.util.find_spec("assay") is not None,
                    "prefix": sys.prefix,
                },
            }
        """
    )
    outcome = _evaluate(pool, tmp_path, files)
    assert outcome.ok, (outcome.error, outcome.stderr)
    assert outcome.output["result"] == [{"split": {"accuracy": 0.75}}]
    info = outcome.output["submission_result"]
    assert (info["numpy"], info["pandas"], info["sklearn"]) == ("1.26.4", "2.2.3", "1.4.2")
    assert info["django"] is False and info["assay"] is False  # the platform stays out of the script's reach
    assert Path(info["prefix"]).parent == environments_dir() / "stacks"


def test_the_older_stack_keeps_np_float(pool, tmp_path: Path) -> None:
    files = _script(
        """
        import numpy as np

        def evaluate(*args, **kwargs):
            return {"result": [{"s": {"x": float(np.array([1.5]).astype(np.float)[0])}}],
                    "submission_result": {"numpy": np.__version__}}
        """
    )
    old = _evaluate(pool, tmp_path / "old", files, "evalai-py3.8")  # alias of evalai-py3.7
    assert old.ok, (old.error, old.stderr)
    assert old.output["result"] == [{"s": {"x": 1.5}}] and old.output["submission_result"]["numpy"] == "1.23.5"
    new = _evaluate(pool, tmp_path / "new", files)  # numpy 1.26: np.float is gone, as on EvalAI's py3.9 worker
    assert not new.ok and "np.float" in new.stderr + (new.error or "")


def test_import_time_installs_succeed_inside_the_offline_sandbox(pool, tmp_path: Path) -> None:
    files = _script(
        """
        import os, socket, subprocess, sys

        def install(package):
            subprocess.check_call([sys.executable, "-m", "pip", "install", package])

        install("scipy")
        install("tqdm==4.70.1")

        def evaluate(*args, **kwargs):
            shell = subprocess.run("pip install tqdm", shell=True, capture_output=True, text=True)
            system = os.system("pip3 install --quiet scipy")
            try:
                socket.create_connection(("pypi.org", 443), timeout=3)
                network = True
            except OSError:
                network = False
            import scipy, tqdm
            return {"result": [{"s": {"ok": 1}}],
                    "submission_result": {"shell": [shell.returncode, shell.stdout], "system": system,
                                          "network": network, "scipy": scipy.__version__}}
        """
    )
    outcome = _evaluate(pool, tmp_path, files)
    assert outcome.ok, (outcome.error, outcome.stderr)
    info = outcome.output["submission_result"]
    assert info["network"] is False  # the sandbox has none: pip found everything installed
    assert info["shell"][0] == 0 and "already satisfied" in info["shell"][1]
    assert info["system"] == 0 and info["scipy"] == "1.11.4"
    assert outcome.stdout.count("Requirement already satisfied: scipy") == 1  # the import-time one
    assert "Requirement already satisfied: tqdm==4.70.1" in outcome.stdout


def test_a_package_installed_at_import_time_is_provided_beforehand(pool, tmp_path: Path) -> None:
    reason = _index_unreachable()
    if reason:
        pytest.skip(reason)
    files = _script(
        f"""
        import subprocess, sys

        for package in ["six=={SIX}"]:
            subprocess.check_call([sys.executable, "-m", "pip", "install", package])
        import six, numpy

        def evaluate(*args, **kwargs):
            return {{"result": [{{"s": {{"ok": 1}}}}], "submission_result": {{"six": six.__version__}}}}
        """
    )
    outcome = _evaluate(pool, tmp_path, files)
    assert outcome.ok, (outcome.error, outcome.stderr)
    assert outcome.output["submission_result"]["six"] == SIX
    assert f"Requirement already satisfied: six=={SIX}" in outcome.stdout


def test_what_cannot_be_provided_fails_at_setup_naming_it(pool, tmp_path: Path) -> None:
    reason = _index_unreachable()
    if reason:
        pytest.skip(reason)
    files = _script(
        """
        import subprocess, sys

        def install(p):
            subprocess.check_call([sys.executable, "-m", "pip", "install", p])

        install("some-package-not-providable-xyz")

        def evaluate(*args, **kwargs):
            return {"result": [{"s": {"ok": 1}}]}
        """
    )
    outcome = _evaluate(pool, tmp_path, files)
    assert outcome.error_kind == "setup"
    assert "'some-package-not-providable-xyz'" in outcome.error and "__init__.py:6" in outcome.error
    # A version the stack's pins refuse is named too, without asking any index.
    pinned = _script('import os\nos.system("pip install numpy==1.19.5")\ndef evaluate(*a, **k): pass\n')
    refused = _evaluate(pool, tmp_path / "pinned", pinned)
    assert refused.error_kind == "setup" and "'numpy==1.19.5'" in refused.error and "1.26.4" in refused.error


def test_requirements_txt_adds_to_the_stack(pool, tmp_path: Path) -> None:
    reason = _index_unreachable()
    if reason:
        pytest.skip(reason)
    files = {
        "requirements.txt": f"six=={SIX}\n",
        **_script(
            """
            import sys
            import numpy, six

            def evaluate(*args, **kwargs):
                return {"result": [{"s": {"ok": 1}}],
                        "submission_result": {"six": six.__file__, "numpy": numpy.__file__, "prefix": sys.prefix}}
            """
        ),
    }
    outcome = _evaluate(pool, tmp_path, files, "evalai-py3.7")
    assert outcome.ok, (outcome.error, outcome.stderr)
    info = outcome.output["submission_result"]
    layer = Path(info["prefix"])
    assert layer.parent == environments_dir() / "layers"
    assert info["six"].startswith(str(layer))  # the layer holds only what requirements.txt adds
    assert "/stacks/evalai-py3.7-" in info["numpy"]  # and sees the chosen stack under it


def test_an_unknown_environment_is_a_setup_error(pool, tmp_path: Path) -> None:
    outcome = _evaluate(pool, tmp_path, _script("def evaluate(*a, **k): pass\n"), "evalai-py39")
    assert outcome.error_kind == "setup" and "did you mean 'evalai-py3.9'" in outcome.error


# --- reading what a script will ask for, and warning about what it lacks ----------------------------------


def test_pip_requests_are_read_from_the_source() -> None:
    source = textwrap.dedent(
        """
        import os, subprocess, sys
        import pip

        def install(package):
            subprocess.check_call([sys.executable, "-m", "pip", "install", package])

        def install_local_package(folder):
            here = os.path.dirname(__file__)
            subprocess.check_output([sys.executable, "-m", "pip", "install", os.path.join(here, folder)])

        install("scipy")
        install("shapely==2.0.1")
        install_local_package("vendored")
        for p in ["tabulate", "jiwer>=3"]:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--index-url", "https://x", p])
        os.system("pip install -U 'rapidfuzz<4' && echo done")
        pip.main(["install", "editdistance"])
        """
    )
    scan = scan_sources([("__init__.py", source)])
    assert [r.name for r in scan.pip_requests] == [
        "scipy", "shapely==2.0.1", "tabulate", "jiwer>=3", "rapidfuzz<4", "editdistance",
    ]  # fmt: skip
    assert scan.pip_requests[0].line == 12 and scan.calls_pip and not scan.dynamic
    computed = scan_sources([("a.py", "import subprocess, sys\nsubprocess.call(['pip', 'install', name])\n")])
    assert computed.calls_pip and computed.dynamic and not computed.pip_requests


def test_validate_warns_about_imports_the_environment_lacks(tmp_path: Path) -> None:
    script = make_zip(
        tmp_path,
        {
            "__init__.py": "from .main import evaluate\n",
            "main.py": """
                import json
                import numpy as np
                import cv2
                from . import helpers
                try:
                    import lightgbm
                except ImportError:
                    lightgbm = None
                import yaml
                import zzz_not_a_package

                def evaluate(*a, **k):
                    return {}
            """,
            "helpers.py": "import sklearn\n",
        },
    )
    problems = import_warnings(script.read_bytes(), "evaluation_script.zip", "evalai-py3.9")
    found = {(p.file, p.line, p.code): p.message for p in problems}
    assert set(found) == {
        ("evaluation_script.zip/main.py", 3, "import_not_provided"),
        ("evaluation_script.zip/main.py", 10, "import_not_provided"),
    }
    assert "'opencv-python-headless'" in found[("evaluation_script.zip/main.py", 3, "import_not_provided")]
    # The older stack has no PyYAML; the bare one has nothing but pip.
    older = import_warnings(script.read_bytes(), "s.zip", "evalai-py3.7")
    assert {p.message.split("'")[1] for p in older} == {"cv2", "yaml", "zzz_not_a_package"}
    bare = import_warnings(script.read_bytes(), "s.zip", "none")
    assert {p.message.split("'")[1] for p in bare} == {"numpy", "cv2", "yaml", "zzz_not_a_package", "sklearn"}


def test_validate_reports_the_warning_and_refuses_an_unknown_environment(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(corpus.need(corpus.BUNDLES / "python-spoc"), bundle, copy_function=shutil.copyfile)
    with (bundle / "evaluation_script" / "main.py").open("a") as fh:
        fh.write("\nimport cv2\n")
    with read_bundle(bundle) as b:
        codes = [(p.code, p.file.rsplit("/", 1)[-1]) for p in b.warnings]
        assert ("import_not_provided", "main.py") in codes
    config = bundle / "challenge_config.yaml"
    config.write_text(config.read_text() + "\nevaluation_environment: evalai-py39\n")
    run = subprocess.run(
        [str(Path(sys.executable).with_name("assay")), "bundle", "validate", "--json", str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(run.stdout)
    assert run.returncode == 1 and not report["valid"]
    problem = next(p for p in report["problems"] if p["key"] == "evaluation_environment")
    assert problem["code"] == "bad_value" and "did you mean 'evalai-py3.9'" in problem["message"]


def test_the_stack_lists_what_it_provides() -> None:
    """The data the validator trusts (``modules``) matches what the built stack really imports."""
    for env in (environments.EVALAI_PY39, environments.EVALAI_PY37):
        python = env_python(ensure_stack(env))
        probe = (
            "import importlib.util as u, json, sys\nprint(json.dumps({m: bool(u.find_spec(m)) for m in sys.argv[1:]}))"
        )
        found = json.loads(
            subprocess.run(
                [str(python), "-I", "-c", probe, *sorted(env.modules)], capture_output=True, text=True, check=True
            ).stdout
        )
        assert all(found.values()), [m for m, ok in found.items() if not ok]
        pins = env.pins()
        listed = subprocess.run(
            [str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True
        ).stdout
        installed = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed)}
        assert all(installed.get(name) == version for name, version in pins.items()), (pins, installed)


# --- the real repositories --------------------------------------------------------------------------------


def _direct(repo: Path, annotation: str, codename: str, environment: str, tmp_path: Path) -> object:
    """evaluate() called directly, unsandboxed, with the stack's own interpreter: the score to expect."""
    work = tmp_path / "direct"
    shutil.copytree(repo / "evaluation_script", work / "evaluation_script", ignore=shutil.ignore_patterns("*.zip"))
    code = (
        "import json, sys\nsys.path.insert(0, sys.argv[1])\n"
        "try:\n    from evaluation_script import evaluate\n"
        "    print(json.dumps(evaluate(sys.argv[2], sys.argv[3], sys.argv[4], submission_metadata={})['result']))\n"
        "except Exception as exc:\n    print(json.dumps({'error': type(exc).__name__}))\n"
    )
    python = env_python(ensure_stack(environments.get(environment)))
    run = subprocess.run(
        [str(python), "-c", code, str(work), str(repo / annotation), str(repo / "submission.json"), codename],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=work,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize(
    ("name", "annotation", "codename", "environment", "works"),
    [
        ("AGENT-Challenge", "annotations/test_annotations_testsplit.json", "test", "evalai-py3.9", True),
        ("URP_EvalAI_25", "annotations/kaist_annotations_test20.json", "dev", "evalai-py3.7", True),
        ("URP_EvalAI_25", "annotations/kaist_annotations_test20.json", "dev", "evalai-py3.9", False),  # np.float
    ],
)
def test_real_repositories_evaluate_as_on_evalai(
    pool, tmp_path: Path, name: str, annotation: str, codename: str, environment: str, works: bool
) -> None:
    """Each repository's own phase, annotation file and submission.json, as the repository has them."""
    repo = corpus.need(corpus.BUNDLES / name)
    script = zip_folder(repo / "evaluation_script", tmp_path)  # as a folder, the way the repository has it
    job = dataclasses.replace(
        job_for(tmp_path, {"__init__.py": ""}, limits=LIMITS, environment=environment),
        key=f"{name}:{environment}",
        script_zip=script,
        annotation_file=repo / annotation,
        submission_file=repo / "submission.json",
        phase_codename=codename,
    )
    outcome = pool.evaluate(job)
    expected = _direct(repo, annotation, codename, environment, tmp_path)
    if works:
        assert outcome.ok, (outcome.error, outcome.stderr[-3000:])
        assert _same(outcome.output["result"], expected), (outcome.output["result"], expected)
    else:
        assert expected == {"error": "AttributeError"}
        assert not outcome.ok and "has no attribute 'float'" in outcome.stderr


def test_validate_warns_about_numpy_aliases_the_environment_removed(tmp_path: Path) -> None:
    script = make_zip(
        tmp_path,
        {"__init__.py": "import numpy as np\n\nx = np.float64(1)\ny = np.float(1)\nz = np.int(2) + np.float(3)\n"},
    )
    new = import_warnings(script.read_bytes(), "evaluation_script", "evalai-py3.9")
    assert [(p.code, p.file, p.line) for p in new] == [
        ("numpy_alias_removed", "evaluation_script/__init__.py", 4),
        ("numpy_alias_removed", "evaluation_script/__init__.py", 5),
    ]
    assert "evalai-py3.7" in new[0].message
    assert import_warnings(script.read_bytes(), "evaluation_script", "evalai-py3.7") == []
