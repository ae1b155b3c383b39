"""Pure functions: zip safety, splitting, result checks, limits, output capping (no subprocesses)."""

from __future__ import annotations

import csv
import io
import json
import stat
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from assay.evaluation import ChunkingSpec, EvaluationLimits, UnsafeZipError, split_submission, validate_output
from assay.evaluation.chunking import _DisjointKeys, cut_submission, detect_format
from assay.evaluation.evaluator import OutputCapture
from assay.evaluation.pool import cap_text
from assay.evaluation.safezip import checked_entry_path, package_root, safe_extract


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return path


HOSTILE_NAMES = [
    ("/etc/cron.d/x", "is an absolute path"),
    ("C:/x.py", "is an absolute path"),
    ("../../x.py", r"points outside the archive \('..'\)"),
    ("a/../../x.py", r"points outside the archive \('..'\)"),
    ("a\\..\\..\\x.py", r"points outside the archive \('..'\)"),
    ("a\x01.py", "holds a control character"),
    ("a\nb.py", "holds a control character"),
    ("a\x7f.py", "holds a control character"),
]


@pytest.mark.parametrize("name, message", HOSTILE_NAMES)
def test_safe_extract_refuses_escaping_paths(tmp_path: Path, name: str, message: str) -> None:
    archive = _zip(tmp_path / "a.zip", [("__init__.py", b""), (name, b"x")])
    with pytest.raises(UnsafeZipError, match=message):
        safe_extract(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["__init__.py", "a.zip"]


@pytest.mark.parametrize("name, message", [*HOSTILE_NAMES, ("a\x00.py", "holds a control character")])
def test_checked_entry_path_is_the_one_name_rule(name: str, message: str) -> None:
    """The rule the server's code bundle and data package checks apply too (a NUL never survives ``zipfile``)."""
    with pytest.raises(UnsafeZipError, match=message):
        checked_entry_path(name)


def test_checked_entry_path_cleans_and_skips() -> None:
    assert checked_entry_path("./a//b\\c.py") == PurePosixPath("a/b/c.py")
    assert checked_entry_path("x/./y") == PurePosixPath("x/y")
    for skipped in ("", "./", "__MACOSX/._a.py", "__MACOSX/"):
        assert checked_entry_path(skipped) is None, skipped


def test_safe_extract_skips_macos_metadata_and_keeps_empty_folders(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", [("__MACOSX/._x.py", b"junk"), ("x.py", b"1"), ("out/", b"")])
    assert safe_extract(archive, tmp_path / "out") == ["x.py"]
    assert not (tmp_path / "out" / "__MACOSX").exists() and (tmp_path / "out" / "out").is_dir()


def test_safe_extract_refuses_symlinks_and_devices(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(UnsafeZipError, match="symbolic link"):
        safe_extract(_zip(tmp_path / "l.zip", [(link, b"/etc/passwd")]), tmp_path / "o1")
    fifo = zipfile.ZipInfo("fifo")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    with pytest.raises(UnsafeZipError, match="not a regular file"):
        safe_extract(_zip(tmp_path / "f.zip", [(fifo, b"")]), tmp_path / "o2")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "corrupt_data"])
def test_safe_extract_reports_an_unreadable_zip_as_unsafe(tmp_path: Path, damage: str) -> None:
    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.txt", bytes(range(256)) * 64)
    data = archive.read_bytes()
    if damage == "garbage":
        data = b"not a zip at all"
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:  # the compressed stream damaged, the central directory intact
        data = data[:40] + bytes(b ^ 0xFF for b in data[40:80]) + data[80:]
    archive.write_bytes(data)
    with pytest.raises(UnsafeZipError, match="not a readable zip"):
        safe_extract(archive, tmp_path / "out")


def test_safe_extract_stops_zip_bombs_by_real_size(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", b"\0" * (8 * 1024**2))
    with pytest.raises(UnsafeZipError, match="more than"):
        safe_extract(archive, tmp_path / "out", max_total_bytes=1024**2)


def test_safe_extract_normalises_modes(tmp_path: Path) -> None:
    setuid = zipfile.ZipInfo("tool.py")
    setuid.external_attr = (stat.S_IFREG | 0o4755) << 16
    names = safe_extract(_zip(tmp_path / "m.zip", [(setuid, b"x"), ("sub/__init__.py", b"")]), tmp_path / "out")
    assert sorted(names) == ["sub/__init__.py", "tool.py"]
    assert stat.S_IMODE((tmp_path / "out" / "tool.py").stat().st_mode) == 0o644


def test_package_root_accepts_one_nested_folder(tmp_path: Path) -> None:
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "__init__.py").write_text("")
    assert package_root(tmp_path / "flat") == tmp_path / "flat"
    (tmp_path / "nested" / "evaluation_script").mkdir(parents=True)
    (tmp_path / "nested" / "evaluation_script" / "__init__.py").write_text("")
    (tmp_path / "nested" / "__MACOSX").mkdir()
    assert package_root(tmp_path / "nested") == tmp_path / "nested" / "evaluation_script"


def test_validate_output_accepts_evalai_results() -> None:
    good = {
        "result": [{"train_split": {"Metric1": 1, "Total": 0.5}}, {"test_split": {"Metric1": float("nan")}}],
        "submission_result": {"anything": ["goes"]},
        "error": [{"test_split": {"error_Metric1": 0.1}}],
    }
    assert validate_output(good) is None
    assert validate_output({"result": []}) is None


@pytest.mark.parametrize(
    "output, fragment",
    [
        (None, "returned NoneType"),
        ({}, "no 'result' key"),
        ({"result": {"a": 1}}, "'result' as dict"),
        ({"result": [1]}, "result[0]"),
        ({"result": [{"s": [1]}]}, "split 's'"),
        ({"result": [{"s": {"m": True}}]}, "'m' = True"),
        ({"result": [{"s": {"m": "high"}}]}, "'m' = 'high', which is not a number"),
        ({"result": [], "error": "x"}, "'error' as str"),
    ],
)
def test_validate_output_names_the_problem(output: object, fragment: str) -> None:
    problem = validate_output(output)
    assert problem is not None and fragment in problem


def test_limits_validate_and_describe() -> None:
    limits = EvaluationLimits(memory_bytes=2 * 1024**3, tmp_bytes=64 * 1024**2)
    assert limits.file_bytes == 64 * 1024**2
    assert limits.for_child()["max_file_bytes"] == 64 * 1024**2
    with pytest.raises(ValueError):
        EvaluationLimits(wall_seconds=0)
    with pytest.raises(ValueError):
        EvaluationLimits(max_processes=1)
    assert hash(limits) == hash(EvaluationLimits(memory_bytes=2 * 1024**3, tmp_bytes=64 * 1024**2))


def test_output_capture_keeps_the_head_and_counts_the_rest() -> None:
    cap = OutputCapture(10)
    for _ in range(5):
        cap.feed(b"abcdef")
    assert cap.text().startswith("abcdefabcd\n[truncated 20 bytes")
    assert cap_text("é" * 20, 7).startswith("ééé\n[truncated 33 bytes")
    assert cap_text("short", 100) == "short"


def test_chunking_spec_validates() -> None:
    with pytest.raises(ValueError):
        ChunkingSpec(format="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ChunkingSpec(chunk_count=0)


def test_detect_format(tmp_path: Path) -> None:
    cases = {
        "a.json": '{"x": 1,\n "y": 2}',
        "b.json": '[{"x": 1}]',
        "c.txt": '{"x": 1}\n{"x": 2}\n',
        "d.jsonl": '{"x": 1}',
        "e.csv": "id,label\n1,a\n",
        "f.dat": "id,label\n1,a\n",
    }
    expected = {
        "a.json": "json",
        "b.json": "json",
        "c.txt": "jsonl",
        "d.jsonl": "jsonl",
        "e.csv": "csv",
        "f.dat": "csv",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        assert detect_format(tmp_path / name) == expected[name], name


def test_split_json_list_and_object_round_trip(tmp_path: Path) -> None:
    items = [{"id": i} for i in range(10)]
    (tmp_path / "l.json").write_text(json.dumps(items))
    parts = split_submission(tmp_path / "l.json", 3, tmp_path / "l")
    assert len(parts) == 3
    assert sum((json.loads(p.read_text()) for p in parts), []) == items
    mapping = {f"k{i}": i for i in range(7)}
    (tmp_path / "o.json").write_text(json.dumps(mapping))
    parts = split_submission(tmp_path / "o.json", 3, tmp_path / "o")
    merged: dict = {}
    for p in parts:
        merged.update(json.loads(p.read_text()))
    assert merged == mapping and len(parts) == 3


def test_split_jsonl_and_csv_keep_every_record(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i}) + "\n" for i in range(100)]
    (tmp_path / "s.jsonl").write_text("".join(lines))
    parts = split_submission(tmp_path / "s.jsonl", 4, tmp_path / "j")
    assert 2 <= len(parts) <= 4
    assert "".join(p.read_text() for p in parts) == "".join(lines)
    rows = [["id", "text"]] + [[str(i), f'line {i}\nwith "quotes", commas'] for i in range(50)]
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    (tmp_path / "s.csv").write_text(buf.getvalue(), newline="")
    parts = split_submission(tmp_path / "s.csv", 3, tmp_path / "c")
    assert len(parts) == 3
    got = []
    for p in parts:
        with p.open(newline="") as fh:
            chunk = list(csv.reader(fh))
        assert chunk[0] == ["id", "text"]  # header repeated
        got += chunk[1:]
    assert got == rows[1:]


@pytest.mark.parametrize(
    "data",
    [
        [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]] * 5,  # commas inside nested lists
        [{"id": i, "label": "a, b", "s": 'x, "y": [1, 2]'} for i in range(20)],  # commas and quotes in strings
        {f"k{i}": {"label": "\u00e9t\u00e9 \u2603", "box": [i, i + 1]} for i in range(20)},  # UTF-8, nesting
    ],
)
def test_json_is_cut_between_items_as_bytes_of_the_file(tmp_path: Path, data: object) -> None:
    source = tmp_path / "s.json"
    source.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    cut = cut_submission(source, 4, tmp_path / "out")
    assert len(cut.parts) >= 2 and cut.check is not None and cut.verify()
    pieces = [json.loads(p.read_bytes()) for p in cut.parts]
    if isinstance(data, list):
        assert sum(pieces, []) == data
    else:
        assert [k for piece in pieces for k in piece] == list(data)
        assert {k: v for piece in pieces for k, v in piece.items()} == data
    original = source.read_bytes()
    assert all(p.read_bytes()[1:-1] in original for p in cut.parts)  # copied, not re-serialised


def test_a_cut_that_puts_a_key_in_two_chunks_is_refused_and_redone_by_parsing(tmp_path: Path) -> None:
    source = tmp_path / "dup.json"
    source.write_text('{"a": 1, "b": 2, "c": 3, "d": 4, "a": 5, "e": 6}')
    cut = cut_submission(source, 3, tmp_path / "fast")
    assert len(cut.parts) == 3 and not cut.verify()
    parts = split_submission(source, 3, tmp_path / "slow")
    merged: dict = {}
    for p in parts:
        piece = json.loads(p.read_text())
        assert merged.keys().isdisjoint(piece)
        merged.update(piece)
    assert merged == {"a": 5, "b": 2, "c": 3, "d": 4, "e": 6}  # what json.load of the whole file gives


@pytest.mark.parametrize(
    ("chunks", "disjoint"),
    [
        ([["a", "b"], ["c", "d"], ["e"]], True),  # rising throughout: no set needed
        ([["a", "c"], ["c", "d"]], False),  # the next chunk starts with the last key seen
        ([["a", "b"], ["c", "d"], ["b2", "e"]], True),  # order broken, no key repeated
        ([["a", "b"], ["c", "d"], ["x", "b"]], False),  # unsorted chunk repeats a key of a sorted one
        ([["a", "b"], ["c", "d"], ["b2"], ["e", "a"]], False),  # repeated after the set took over
        ([["b", "a"], ["c"], ["a"]], False),  # unsorted from the first chunk
        ([["b", "a"], ["c"], ["a2"]], True),
    ],
)
def test_object_chunks_share_no_key(chunks: list[list[str]], disjoint: bool) -> None:
    keys = _DisjointKeys()
    assert all(keys.add(list(chunk)) for chunk in chunks) is disjoint


def test_a_cut_of_malformed_json_fails_its_check(tmp_path: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text("[" + ", ".join(["1"] * 50) + " 2, " + ", ".join(["3"] * 50) + "]")
    cut = cut_submission(source, 2, tmp_path / "out")
    assert len(cut.parts) == 2 and not cut.verify()
    assert split_submission(source, 2, tmp_path / "again") == []


def test_line_cuts_are_balanced_by_bytes(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "text": "x" * (i % 40)}) + "\n" for i in range(2_000)]
    (tmp_path / "s.jsonl").write_text("".join(lines))
    parts = split_submission(tmp_path / "s.jsonl", 4, tmp_path / "j")
    sizes = [p.stat().st_size for p in parts]
    assert len(parts) == 4 and max(sizes) - min(sizes) < 200  # within about two lines of each other
    assert "".join(p.read_text() for p in parts) == "".join(lines)


def test_unsplittable_submissions_give_no_chunks(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "scalar.json").write_text("42")
    (tmp_path / "one.json").write_text("[1]")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)  # deeper than the parser's recursion
    for name in ("bad.json", "scalar.json", "one.json", "deep.json"):
        assert split_submission(tmp_path / name, 4, tmp_path / "out") == []
    assert split_submission(tmp_path / "one.json", 1, tmp_path / "out") == []


def test_evaluation_never_loads_django_or_the_server() -> None:
    import subprocess
    import sys

    code = (
        "import sys, assay.evaluation, assay.evaluation.dask_backend, assay.evaluation.evaluator_child;"
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith(('django.', 'assay.server')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


def test_evaluator_child_uses_the_standard_library_only() -> None:
    """It is the only Assay file bound into the sandbox: it cannot import anything else of Assay."""
    import ast
    import sys

    import assay.evaluation.evaluator_child as child

    tree = ast.parse(Path(child.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports in evaluator_child.py"
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_splitting_runs_memory_capped_outside_the_worker(tmp_path: Path) -> None:
    from assay.evaluation.chunking import split_in_subprocess

    (tmp_path / "s.json").write_text(json.dumps({f"k{i}": i for i in range(1000)}))
    parts = split_in_subprocess(tmp_path / "s.json", 3, tmp_path / "ok", memory_bytes=1024**3, timeout=30)
    assert len(parts) == 3
    # A submission whose parse needs more memory than the job may use is not split (nor loaded here).
    (tmp_path / "big.json").write_text("[" + ",".join(["1234567"] * 2_000_000) + "]")
    assert split_in_subprocess(tmp_path / "big.json", 3, tmp_path / "no", memory_bytes=64 * 1024**2, timeout=30) == []


def test_a_split_process_started_ahead_splits_and_a_dead_one_is_replaced(tmp_path: Path) -> None:
    from assay.evaluation.chunking import SplitProcess, start_splitter, stop_splitter

    (tmp_path / "s.json").write_text(json.dumps({f"k{i:04d}": i for i in range(1000)}))
    spare = start_splitter()
    assert spare is not None and spare.poll() is None  # waiting for its request
    split = SplitProcess(tmp_path / "s.json", 3, tmp_path / "a", memory_bytes=1024**3, timeout=30, process=spare)
    assert split.proc is spare and len(split.parts()) == 3 and split.verified()
    assert spare.poll() is not None  # done and reaped
    dead = start_splitter()
    assert dead is not None
    stop_splitter(dead)
    split = SplitProcess(tmp_path / "s.json", 3, tmp_path / "b", memory_bytes=1024**3, timeout=30, process=dead)
    assert split.proc is not dead and len(split.parts()) == 3 and split.verified()
    # A spare that is told nothing (its pool closed) ends without splitting anything.
    idle = start_splitter()
    assert idle is not None and idle.stdin is not None
    idle.stdin.close()
    assert idle.wait(timeout=30) == 0
    stop_splitter(idle)
