"""A script's requirements.txt may name packages from the index only: pip builds anything else from source,
and a source build runs code on the worker outside the sandbox."""

from __future__ import annotations

from pathlib import Path

import builders
import pytest

from assay.bundle import BundleError, read_bundle
from assay.bundle.requirements import requirement_problems

ACCEPTED = """# what the metrics need
numpy>=1.24  # any wheel
scikit-learn==1.5.0 ; python_version >= "3.9"
pandas[excel]~=2.2 \\
    --hash=sha256:0123
"""


def test_named_packages_with_versions_markers_extras_and_hashes_are_accepted() -> None:
    assert requirement_problems(ACCEPTED) == []
    assert requirement_problems("") == [] and requirement_problems("\n# only a comment\n") == []


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("-e git+https://github.com/x/y#egg=y", "pip option"),
        ("-r other.txt", "pip option"),
        ("--index-url https://evil.example/simple", "pip option"),
        ("--extra-index-url=https://evil.example/simple", "pip option"),
        ("./vendor/pkg.tar.gz", "names a file, a URL or a repository"),
        ("/abs/path/pkg", "names a file, a URL or a repository"),
        ("file:///tmp/pkg.tar.gz", "names a file, a URL or a repository"),
        ("git+https://github.com/x/y", "names a file, a URL or a repository"),
        ("https://example.org/pkg-1.0-py3-none-any.whl", "names a file, a URL or a repository"),
        ("evil @ https://evil.example/evil-1.0.tar.gz", "points at a URL"),
        ("requests --install-option=--prefix=/", "only --hash"),
        ("not a requirement !!", "not a requirement pip understands"),
    ],
)
def test_what_pip_would_build_or_fetch_elsewhere_is_refused_with_its_line(line: str, words: str) -> None:
    [problem] = requirement_problems(f"numpy\n\n{line}\n")
    assert problem.line == 3 and words in str(problem) and str(problem).startswith("requirements.txt line 3")


def test_a_bundle_whose_script_asks_for_a_source_build_is_refused(tmp_path: Path) -> None:
    files = {
        "evaluation_script/__init__.py": builders.SCRIPT_INIT,
        "evaluation_script/main.py": builders.SCRIPT_MAIN,
        "evaluation_script/requirements.txt": "numpy==2.0\nmytool @ git+https://github.com/me/mytool\n",
    }
    config = builders.minimal_config(evaluation_script="evaluation_script/")
    root = builders.write_folder(tmp_path / "b", config, extra=files, omit=("evaluation_script.zip",))
    with pytest.raises(BundleError) as exc:
        read_bundle(root)
    [problem] = [p for p in exc.value.problems if p.code == "requirement_not_installable"]
    assert "line 2" in problem.message and problem.key == "evaluation_script" and problem.line
