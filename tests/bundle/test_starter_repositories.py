"""Real EvalAI-Starters repositories (``../shared/corpus/evalai-bundles``) read as they are, folder or zip.

They keep the script as ``evaluation_script/`` and never commit the ``evaluation_script.zip`` their
config names: EvalAI's GitHub Action builds it. The reader must build the same zip (same files,
same paths, same bytes in each file), the same way every time, and say what it did.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
from builders import zip_tree

from assay.bundle import BundleError, read_bundle
from tests import corpus

REPOSITORIES = (
    sorted(p.name for p in corpus.BUNDLES.iterdir() if (p / "challenge_config.yaml").is_file())
    if corpus.BUNDLES.is_dir()
    else []
)
# EvalAI-Starters github/config.py: what the Action leaves out of the challenge zip.
ACTION_IGNORED_DIRS = {".git", ".github", "github", "code_upload_challenge_evaluation", "remote_challenge_evaluation"}
ACTION_IGNORED_FILES = {".gitignore", "challenge_config.zip", "README.md", "run.sh", "submission.json"}


def test_the_repositories_are_there() -> None:
    assert len(REPOSITORIES) >= 4, corpus.need(corpus.BUNDLES)


def _copy(repo: str, dest: Path) -> Path:
    """A writable copy of a repository (the corpus is read-only)."""
    shutil.copytree(corpus.BUNDLES / repo, dest)
    for root, dirs, files in os.walk(dest):
        for name in dirs + files:
            path = Path(root) / name
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    dest.chmod(dest.stat().st_mode | stat.S_IWUSR)
    return dest


def _action_script_zip(folder: Path) -> dict[str, bytes]:
    """What EvalAI's GitHub Action puts in evaluation_script.zip: every file under the folder, relative to it."""
    return {
        (Path(root) / name).relative_to(folder).as_posix(): (Path(root) / name).read_bytes()
        for root, _, files in os.walk(folder)
        for name in files
    }


def _zip_like_the_action(repo: Path, target: Path) -> Path:
    """The challenge zip the Action sends, minus the evaluation_script.zip it would have built first."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, _dirs, files in os.walk(repo):
            rel_root = Path(root).relative_to(repo)
            if set(rel_root.parts) & ACTION_IGNORED_DIRS:
                continue
            for name in files:
                if name not in ACTION_IGNORED_FILES:
                    zf.write(Path(root) / name, (rel_root / name).as_posix())
    return target


def _contents(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _key_line(repo: Path) -> int:
    lines = (repo / "challenge_config.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith("evaluation_script:"))


@pytest.mark.parametrize("repo", REPOSITORIES)
def test_repository_folder_reads_as_it_is(repo: str) -> None:
    folder = corpus.BUNDLES / repo
    assert not (folder / "evaluation_script.zip").exists(), "the corpus repository is expected as published"
    with read_bundle(folder) as bundle:
        script = bundle.evaluation_script
        warnings = {w.code: w for w in bundle.warnings}
        assert script is not None and bundle.annotations
    assert _contents(script.data) == _action_script_zip(folder / "evaluation_script")
    warning = warnings["evaluation_script_folder_zipped"]
    assert (warning.file, warning.key, warning.line) == (
        "challenge_config.yaml",
        "evaluation_script",
        _key_line(folder),
    )
    assert "'evaluation_script.zip' is not in the bundle" in warning.message
    assert "folder 'evaluation_script/' is zipped in its place" in warning.message
    assert "script_without_init" not in warnings


@pytest.mark.parametrize("repo", REPOSITORIES)
def test_zip_of_the_repository_gives_the_same_script(repo: str, tmp_path: Path) -> None:
    folder = corpus.BUNDLES / repo
    with read_bundle(folder) as bundle:
        from_folder = bundle.evaluation_script.data
    with read_bundle(_zip_like_the_action(folder, tmp_path / "challenge_config.zip")) as bundle:
        assert bundle.evaluation_script.data == from_folder  # byte for byte: same script hash either way
        assert "evaluation_script_folder_zipped" in {w.code for w in bundle.warnings}


def test_the_zip_is_deterministic(tmp_path: Path) -> None:
    repo = _copy(REPOSITORIES[0], tmp_path / "repo")
    with read_bundle(repo) as bundle:
        first = bundle.evaluation_script.data
    for path in (repo / "evaluation_script").iterdir():
        os.utime(path, (0, 1_900_000_000))  # other dates, same files
        path.chmod(0o600)
    with read_bundle(repo) as bundle:
        assert bundle.evaluation_script.data == first
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        assert zf.namelist() == sorted(zf.namelist())
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_run_sh_zip_left_inside_the_folder_is_left_out(tmp_path: Path) -> None:
    """URP_EvalAI_25's run.sh: ``cd evaluation_script && zip -r ./evaluation_script.zip *``."""
    repo = _copy("URP_EvalAI_25", tmp_path / "repo")
    script_dir = repo / "evaluation_script"
    expected = _action_script_zip(script_dir)
    with zipfile.ZipFile(script_dir / "evaluation_script.zip", "w") as zf:
        for name, data in expected.items():
            zf.writestr(name, data)
    with read_bundle(repo) as bundle:
        assert _contents(bundle.evaluation_script.data) == expected  # no script nested in the script
        (warning,) = [w for w in bundle.warnings if w.code == "evaluation_script_folder_zipped"]
    assert "'evaluation_script/evaluation_script.zip', a zip run.sh left inside the folder, is left out" in (
        warning.message
    )


def test_a_folder_holding_only_run_sh_zip_uses_that_zip(tmp_path: Path) -> None:
    repo = _copy("python-spoc", tmp_path / "repo")
    script_dir = repo / "evaluation_script"
    expected = _action_script_zip(script_dir)
    with zipfile.ZipFile(tmp_path / "inner.zip", "w") as zf:
        for name, data in expected.items():
            zf.writestr(name, data)
    shutil.rmtree(script_dir)
    script_dir.mkdir()
    shutil.copyfile(tmp_path / "inner.zip", script_dir / "evaluation_script.zip")
    with read_bundle(repo) as bundle:
        assert bundle.evaluation_script.data == (tmp_path / "inner.zip").read_bytes()
        (warning,) = [w for w in bundle.warnings if w.code == "evaluation_script_folder_zipped"]
    assert "that zip is the script" in warning.message


def test_a_committed_zip_wins_over_the_folder_and_a_drift_is_warned(tmp_path: Path) -> None:
    repo = _copy("affective-visdial", tmp_path / "repo")
    with zipfile.ZipFile(repo / "evaluation_script.zip", "w") as zf:
        zf.writestr("__init__.py", (repo / "evaluation_script" / "__init__.py").read_bytes())
        zf.writestr("main.py", "def evaluate(*a, **k):\n    return {'result': []}\n")
        zf.writestr("old_helper.py", "")
    with read_bundle(repo) as bundle:
        assert bundle.evaluation_script.data == (repo / "evaluation_script.zip").read_bytes()
        codes = {w.code: w for w in bundle.warnings}
    assert "evaluation_script_folder_zipped" not in codes
    warning = codes["evaluation_script_differs_from_folder"]
    assert "(main.py, old_helper.py)" in warning.message and "would rebuild it from the folder" in warning.message
    assert (warning.key, warning.line) == ("evaluation_script", _key_line(repo))


def test_a_committed_zip_equal_to_its_folder_is_silent(tmp_path: Path) -> None:
    """As in the zip EvalAI's Action sends: the zip it just built beside the folder it built it from."""
    repo = _copy("affective-visdial", tmp_path / "repo")
    with zipfile.ZipFile(repo / "evaluation_script.zip", "w") as zf:
        for name, data in _action_script_zip(repo / "evaluation_script").items():
            zf.writestr(name, data)
    with read_bundle(repo) as bundle:
        assert bundle.evaluation_script.data == (repo / "evaluation_script.zip").read_bytes()
        assert bundle.warnings == []


def test_caches_are_left_out(tmp_path: Path) -> None:
    repo = _copy("AGENT-Challenge", tmp_path / "repo")
    expected = _action_script_zip(repo / "evaluation_script")
    (repo / "evaluation_script" / "__pycache__").mkdir()
    (repo / "evaluation_script" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\x00cache")
    (repo / "evaluation_script" / ".DS_Store").write_bytes(b"Bud1")
    with read_bundle(repo) as bundle:
        assert _contents(bundle.evaluation_script.data) == expected
        (warning,) = [w for w in bundle.warnings if w.code == "evaluation_script_folder_zipped"]
    assert "2 cache file(s) left out" in warning.message


def test_a_symlink_in_the_script_folder_is_refused_not_followed(tmp_path: Path) -> None:
    repo = _copy("AGENT-Challenge", tmp_path / "repo")
    (repo / "evaluation_script" / "secrets.py").symlink_to("/etc/passwd")
    with pytest.raises(BundleError) as info:
        read_bundle(repo)
    assert [(p.code, p.file) for p in info.value.errors] == [("symlink", "evaluation_script/secrets.py")]


def test_neither_zip_nor_folder_is_file_not_found(tmp_path: Path) -> None:
    repo = _copy("python-spoc", tmp_path / "repo")
    shutil.rmtree(repo / "evaluation_script")
    with pytest.raises(BundleError) as info:
        read_bundle(repo)
    (error,) = info.value.errors
    assert (error.code, error.key, error.line) == ("file_not_found", "evaluation_script", _key_line(repo))
    assert "'evaluation_script.zip' is not in the bundle" in error.message


@pytest.mark.parametrize("repo", REPOSITORIES)
def test_github_download_zip_with_its_top_folder(repo: str, tmp_path: Path) -> None:
    """GitHub's "Download ZIP" puts everything under ``<repo>-<branch>/``; other YAML files sit deeper."""
    folder = corpus.BUNDLES / repo
    target = zip_tree(folder, tmp_path / f"{repo}-challenge.zip", f"{repo}-challenge/")
    with read_bundle(folder) as bundle:
        expected = bundle.evaluation_script.data
    with read_bundle(target) as bundle:
        assert bundle.evaluation_script.data == expected and bundle.annotations
        (warning,) = [w for w in bundle.warnings if w.code == "evaluation_script_folder_zipped"]
    assert warning.file == f"{repo}-challenge/challenge_config.yaml"
