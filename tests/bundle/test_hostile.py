"""Hostile bundles: each must fail with one precise, stable Problem code naming the file (and line/key).

Every case is built in ``tmp_path``. The reader never extracts anything, and these tests check it:
nothing appears outside ``tmp_path`` (traversal targets carry a unique name that is looked for),
and nothing inside ``tmp_path`` changes while the bundle is read.
"""

from __future__ import annotations

import copy
import functools
import io
import os
import uuid
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import builders
import pytest
import yaml

from assay.bundle import BundleError, Limits, Problem, parse_config, read_bundle, yamlsafe

ESCAPE = f"assay-escape-{uuid.uuid4().hex[:12]}"  # the name every traversal attempt aims at
CFG = "challenge_config.yaml"
ZIP = "hostile.zip"

Source = Path | io.BytesIO
Builder = Callable[[Path], Source]


# --- helpers -------------------------------------------------------------------------------------


def _zip(path: Path, files: dict[str, bytes | str], *, extra: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> Path:
    """A zip of ``files`` then ``extra`` entries (ZipInfo allows modes; names may repeat)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of some cases
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, payload in files.items():
                zf.writestr(name, payload)
            for info, payload in extra:
                zf.writestr(info, payload)
    return path


def _entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so external_attr's high half is st_mode
    info.external_attr = mode << 16
    return info


def bundle_zip_with(*extra: tuple[zipfile.ZipInfo | str, bytes]) -> Builder:
    """A complete valid bundle zip plus ``extra`` entries."""

    def build(tmp: Path) -> Path:
        return _zip(tmp / ZIP, builders.bundle_files(), extra=list(extra))

    return build


def bundle_zip(**bundle_kwargs: Any) -> Builder:
    return lambda tmp: builders.write_zip(tmp / ZIP, **bundle_kwargs)


def folder(mutate: Callable[[dict], Any] | None = None, **bundle_kwargs: Any) -> Builder:
    """A complete folder bundle whose config dict went through ``mutate`` first."""

    def build(tmp: Path) -> Path:
        config = builders.minimal_config()
        if mutate:
            mutate(config)
        return builders.write_folder(tmp / "bundle", config, **bundle_kwargs)

    return build


def config_file(text: bytes | str) -> Builder:
    """A lone challenge_config.yaml (config-only mode)."""

    def build(tmp: Path) -> Path:
        path = tmp / CFG
        path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        return path

    return build


def set_in(path: str, value: Any) -> Callable[[dict], None]:
    """Mutation: set the dotted ``path`` (list indexes as numbers) to ``value``."""

    def mutate(config: dict) -> None:
        *parents, last = (int(p) if p.isdigit() else p for p in path.split("."))
        target: Any = config
        for step in parents:
            target = target[step]
        target[last] = value

    return mutate


def add_phase(config: dict, **changes: Any) -> None:
    phase = copy.deepcopy(config["challenge_phases"][0])
    phase.update({"id": 2, "name": "Test Phase", "codename": "test"}, **changes)
    config["challenge_phases"].append(phase)


def both(*mutations: Callable[[dict], Any]) -> Callable[[dict], None]:
    def mutate(config: dict) -> None:
        for m in mutations:
            m(config)

    return mutate


@functools.cache
def zeros_deflated(size: int) -> bytes:
    """A zip holding ``size`` zero bytes as ``zeros.bin`` (about 1000:1 compression)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(size))
    return buf.getvalue()


def zip_bomb(tmp: Path) -> Path:
    """50 MB of zeros inside the annotations folder, copied in compressed (no re-deflating)."""
    path = builders.write_zip(tmp / ZIP)
    with (
        zipfile.ZipFile(io.BytesIO(zeros_deflated(50 * 1024 * 1024))) as bomb,
        zipfile.ZipFile(path, "a") as zf,
    ):
        info = bomb.infolist()[0]
        raw = bomb.fp
        raw.seek(info.header_offset + 30 + len(info.filename.encode()) + len(info.extra))
        data = raw.read(info.compress_size)
        target = zipfile.ZipInfo("annotations/huge.json", date_time=info.date_time)
        target.compress_type = zipfile.ZIP_DEFLATED
        target.file_size, target.compress_size, target.CRC = info.file_size, info.compress_size, info.CRC
        with zf._lock:  # write the pre-deflated entry as zipfile itself would
            target.header_offset = zf.fp.tell()
            zf.fp.write(target.FileHeader(False))
            zf.fp.write(data)
            zf.filelist.append(target)
            zf.NameToInfo[target.filename] = target
            zf.start_dir = zf.fp.tell()
            zf._didModify = True
    return path


def set_encrypted_flag(data: bytes, name: str) -> bytes:
    """Set general-purpose bit 0 ("encrypted") of ``name`` in its local and central headers."""
    buf = bytearray(data)
    encoded = name.encode()
    for signature, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        at = buf.find(signature)
        while at != -1:
            if buf[at + name_at : at + name_at + len(encoded)] == encoded:
                buf[at + flag_at] |= 0x01
            at = buf.find(signature, at + 1)
    return bytes(buf)


def encrypted(tmp: Path) -> Path:
    path = builders.write_zip(tmp / ZIP)
    path.write_bytes(set_encrypted_flag(path.read_bytes(), "templates/description.html"))
    return path


def truncated(tmp: Path) -> Path:
    data = builders.write_zip(tmp / ZIP).read_bytes()
    (tmp / ZIP).write_bytes(data[: len(data) // 2])
    return tmp / ZIP


def corrupt_config_stream(tmp: Path) -> Path:
    """The config's deflate stream damaged in the middle (the central directory is intact)."""
    data = bytearray(builders.write_zip(tmp / ZIP).read_bytes())
    start = 30 + len(CFG)  # the config is the first entry: local header, name, then data
    for i in range(start + 40, start + 120):
        data[i] ^= 0x5A
    (tmp / ZIP).write_bytes(bytes(data))
    return tmp / ZIP


def not_a_zip(tmp: Path) -> Path:
    (tmp / ZIP).write_bytes(b"PK\x05\x06 this is not really a zip archive\n" * 10)
    return tmp / ZIP


def script_zip_with(*extra: tuple[zipfile.ZipInfo | str, bytes]) -> Builder:
    """A valid bundle zip whose evaluation_script.zip also holds ``extra`` entries."""

    def build(tmp: Path) -> Path:
        script = _zip(
            tmp / "script.zip",
            {"__init__.py": builders.SCRIPT_INIT, "main.py": builders.SCRIPT_MAIN},
            extra=list(extra),
        ).read_bytes()
        (tmp / "script.zip").unlink()
        return builders.write_zip(tmp / ZIP, extra={"evaluation_script.zip": script})

    return build


INPUTS = "inputs/images.zip"
INPUTS_KEY = "challenge_phases.0.test_inputs"


def inputs_zip_bundle(
    payload: bytes | None = None, *extra: tuple[zipfile.ZipInfo | str, bytes], as_zip: bool
) -> Builder:
    """A valid bundle (a zip, or a folder) whose first phase's test_inputs is ``inputs/images.zip``: a zip of one
    image plus ``extra`` entries, or the raw ``payload``. A worker unpacks it; the reader reads its central
    directory only (from a temporary copy inside a zip bundle)."""

    def build(tmp: Path) -> Path:
        config = builders.minimal_config()
        config["challenge_phases"][0]["test_inputs"] = INPUTS
        if payload is None:
            inner = _zip(tmp / "inner.zip", {"images/0001.png": b"\x89PNG"}, extra=list(extra))
            data = inner.read_bytes()
            inner.unlink()
        else:
            data = payload
        if as_zip:
            return builders.write_zip(tmp / ZIP, config, extra={INPUTS: data})
        return builders.write_folder(tmp / "bundle", config, extra={INPUTS: data})

    return build


def inputs_stream_damaged(tmp: Path) -> Path:
    """A zip bundle whose test inputs entry is a sound zip, but whose deflate stream in the bundle is damaged."""
    path = inputs_zip_bundle(
        builders.zip_bytes({f"images/{i}.txt": f"case {i}\n" * 500 for i in range(50)}), as_zip=True
    )(tmp)
    data = bytearray(path.read_bytes())
    start = data.find(b"PK\x03\x04")  # the local headers, until the one naming the inputs
    while data[start + 30 : start + 30 + len(INPUTS)] != INPUTS.encode():
        start = data.find(b"PK\x03\x04", start + 1)
    body = start + 30 + len(INPUTS) + int.from_bytes(data[start + 28 : start + 30], "little")
    for i in range(body + 20, body + 200):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def folder_plus(add: Callable[[Path], Any]) -> Builder:
    def build(tmp: Path) -> Path:
        root = builders.write_folder(tmp / "bundle")
        add(root)
        return root

    return build


def symlink_bundle(tmp: Path) -> Path:
    real = builders.write_folder(tmp / "real")
    (tmp / "link").symlink_to(real)
    return tmp / "link"


def fifo_bundle(tmp: Path) -> Path:
    os.mkfifo(tmp / ZIP)
    return tmp / ZIP


def empty_folder(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
        "title: laughs",
    ]
)
DEEP_FLOW = "title: " + "[" * 10_000 + "]" * 10_000
DEEP_BLOCK = "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "leaf: 1\n"


def folder_text(old: str, new: str) -> Builder:
    """A complete folder bundle whose config text has ``old`` replaced by ``new`` (once)."""

    def build(tmp: Path) -> Path:
        root = builders.write_folder(tmp / "bundle")
        text = (root / CFG).read_text()
        assert old in text
        (root / CFG).write_text(text.replace(old, new, 1))
        return root

    return build


# --- the cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    build: Builder
    code: str
    file: str | None = CFG  # Problem.file must equal this; None: the bundle's own path
    key: str | None = None  # dotted key the problem names
    # "auto": with a key, the line PyYAML gives that key, else no line (the problem concerns a whole
    # file); a tuple: the line of that key path (a missing key is reported at its parent); or a number
    line: int | None | str | tuple = "auto"
    limits: Limits | None = None

    def param(self) -> Any:
        return pytest.param(self, id=self.id)


TIGHT = Limits(max_entries=12, max_file_bytes=10_000, max_total_bytes=40_000, max_text_bytes=4_000)

CASES = [
    # zip structure ------------------------------------------------------------------------------
    Case(
        "zip-symlink",
        bundle_zip_with((_entry("templates/link.html", 0o120777), b"/etc/passwd")),
        "symlink",
        f"{ZIP}: templates/link.html",
    ),
    Case("zip-fifo", bundle_zip_with((_entry("pipe", 0o010644), b"")), "special_file", f"{ZIP}: pipe"),
    Case("zip-device", bundle_zip_with((_entry("dev", 0o020644), b"")), "special_file", f"{ZIP}: dev"),
    Case("zip-dotdot", bundle_zip_with((f"../{ESCAPE}", b"x")), "path_traversal", f"{ZIP}: ../{ESCAPE}"),
    Case(
        "zip-dotdot-inside",
        bundle_zip_with((f"templates/../../{ESCAPE}", b"x")),
        "path_traversal",
        f"{ZIP}: templates/../../{ESCAPE}",
    ),
    Case(
        "zip-backslash-dotdot",
        bundle_zip_with((f"..\\{ESCAPE}", b"x")),
        "path_traversal",
        f"{ZIP}: ..\\{ESCAPE}",
    ),
    Case(
        "zip-absolute",
        bundle_zip_with(("/etc/passwd", b"root:x:0:0")),
        "absolute_path",
        f"{ZIP}: /etc/passwd",
    ),
    Case("zip-drive-letter", bundle_zip_with(("C:/x", b"x")), "absolute_path", f"{ZIP}: C:/x"),
    Case(
        "zip-duplicate-name",
        bundle_zip_with(("templates/description.html", b"<p>second</p>")),
        "duplicate_entry",
        f"{ZIP}: templates/description.html",
    ),
    Case(
        "zip-duplicate-dot-slash",
        bundle_zip_with(("./templates/description.html", b"<p>again</p>")),
        "duplicate_entry",
        f"{ZIP}: ./templates/description.html",
    ),
    Case(
        "zip-file-shadows-folder",
        bundle_zip_with(("templates", b"x")),
        "duplicate_entry",
        f"{ZIP}: templates",
    ),
    Case("zip-bomb-50MB", zip_bomb, "zip_bomb", f"{ZIP}: annotations/huge.json"),
    Case(
        "zip-too-many-entries",
        bundle_zip_with(*((f"junk/{i}.txt", b"x") for i in range(20))),
        "too_many_files",
        ZIP,
        limits=TIGHT,
    ),
    Case(
        "zip-oversized-file",
        bundle_zip_with(("annotations/big.bin", os.urandom(20_000))),
        "file_too_large",
        f"{ZIP}: annotations/big.bin",
        limits=TIGHT,
    ),
    Case(
        "zip-total-too-large",
        bundle_zip_with(*((f"data/{i}.bin", os.urandom(9_000)) for i in range(5))),
        "bundle_too_large",
        ZIP,
        limits=Limits(max_total_bytes=40_000),
    ),
    Case("zip-encrypted-entry", encrypted, "encrypted_zip", f"{ZIP}: templates/description.html"),
    Case("zip-not-a-zip", not_a_zip, "bad_zip", ZIP),
    Case("zip-truncated", truncated, "bad_zip", ZIP),
    Case("zip-corrupt-stream", corrupt_config_stream, "bad_zip", f"{ZIP}: {CFG}"),
    Case(
        "zip-several-yamls",
        lambda tmp: _zip(tmp / ZIP, {"a/one.yaml": "x: 1", "b/two.yml": "y: 2"}),
        "several_configs",
        ZIP,
    ),
    Case("zip-no-config", lambda tmp: _zip(tmp / ZIP, {"readme.txt": "hi"}), "no_config", ZIP),
    # the evaluation script zip inside the bundle is checked as strictly --------------------------
    Case(
        "script-traversal",
        script_zip_with((f"../../{ESCAPE}.py", b"import os")),
        "path_traversal",
        f"evaluation_script.zip: ../../{ESCAPE}.py",
        key="evaluation_script",
    ),
    Case(
        "script-absolute",
        script_zip_with(("/etc/cron.d/evil", b"* * * * * root sh")),
        "absolute_path",
        "evaluation_script.zip: /etc/cron.d/evil",
        key="evaluation_script",
    ),
    Case(
        "script-symlink",
        script_zip_with((_entry("data", 0o120777), b"/etc")),
        "symlink",
        "evaluation_script.zip: data",
        key="evaluation_script",
    ),
    Case(
        "script-zip-bomb",
        script_zip_with(("weights.bin", bytes(3 * 1024 * 1024))),
        "zip_bomb",
        "evaluation_script.zip: weights.bin",
        key="evaluation_script",
    ),
    Case(
        "script-not-a-zip",
        bundle_zip(extra={"evaluation_script.zip": b"#!/bin/sh\nrm -rf /\n"}),
        "bad_zip",
        "evaluation_script.zip",
        key="evaluation_script",
    ),
    Case(  # the worker refuses a control character in a name; the reader once let all but NUL through
        "script-control-character",
        script_zip_with(("a\x01b.py", b"x = 1")),
        "bad_path",
        "evaluation_script.zip: a\x01b.py",
        key="evaluation_script",
    ),
    Case(  # macOS metadata is no file of the script, but the worker checks every entry it unpacks
        "script-symlink-under-macosx",
        script_zip_with((_entry("__MACOSX/._data", 0o120777), b"/etc")),
        "symlink",
        "evaluation_script.zip: __MACOSX/._data",
        key="evaluation_script",
    ),
    Case(
        "script-control-character-under-macosx",
        script_zip_with(("__MACOSX/\x1b[2J.py", b"")),
        "bad_path",
        "evaluation_script.zip: __MACOSX/\x1b[2J.py",
        key="evaluation_script",
    ),
    Case(
        "script-fifo",
        script_zip_with((_entry("pipe", 0o010644), b"")),
        "special_file",
        "evaluation_script.zip: pipe",
        key="evaluation_script",
    ),
    Case(
        "script-not-zip-name",
        folder(set_in("evaluation_script", "main.py"), extra={"main.py": "x = 1"}),
        "evaluation_script_not_zip",
        key="evaluation_script",
    ),
    Case(
        "script-missing",
        folder(lambda c: c.pop("evaluation_script")),
        "missing_key",
        key="evaluation_script",
        line=(),
    ),
    # a phase's test inputs zip, unpacked by the worker, is checked by the worker's rule at import ----
    *(
        Case(
            f"test-inputs-{what}-in-{'zip' if as_zip else 'folder'}",
            inputs_zip_bundle(payload, *extra, as_zip=as_zip),
            code,
            file,
            key=INPUTS_KEY,
        )
        for as_zip in (True, False)
        for what, payload, extra, code, file in (
            ("dotdot", None, [(f"../{ESCAPE}", b"x")], "path_traversal", f"{INPUTS}: ../{ESCAPE}"),
            ("absolute", None, [("/etc/passwd", b"x")], "absolute_path", f"{INPUTS}: /etc/passwd"),
            ("symlink", None, [(_entry("images/link", 0o120777), b"/etc")], "symlink", f"{INPUTS}: images/link"),
            ("macosx-symlink", None, [(_entry("__MACOSX/l", 0o120777), b"/")], "symlink", f"{INPUTS}: __MACOSX/l"),
            ("device", None, [(_entry("dev", 0o020644), b"")], "special_file", f"{INPUTS}: dev"),
            ("control-character", None, [("a\tb.png", b"x")], "bad_path", f"{INPUTS}: a\tb.png"),
            (
                "encrypted",
                set_encrypted_flag(builders.zip_bytes({"a.png": b"x"}), "a.png"),
                [],
                "encrypted_zip",
                f"{INPUTS}: a.png",
            ),
            ("not-a-zip", b"GIF89a not a zip at all", [], "bad_zip", INPUTS),
            ("truncated", builders.zip_bytes({"images/1.png": os.urandom(4000)})[:2000], [], "bad_zip", INPUTS),
        )
    ),
    Case("test-inputs-damaged-in-the-bundle", inputs_stream_damaged, "bad_zip", f"{ZIP}: {INPUTS}", key=INPUTS_KEY),
    # YAML itself ----------------------------------------------------------------------------------
    Case("yaml-billion-laughs", config_file(BILLION_LAUGHS), "yaml_too_large", line=1),
    Case(
        "yaml-python-object-apply",
        config_file(f"title: !!python/object/apply:os.system ['touch {ESCAPE}']\n"),
        "yaml_unsafe_tag",
        line=1,
    ),
    Case(
        "yaml-python-name",
        config_file("title: x\nimage: !!python/name:os.system\n"),
        "yaml_unsafe_tag",
        line=2,
    ),
    Case(
        "yaml-python-object-new",
        config_file("a: 1\n\nb: !!python/object/new:subprocess.Popen [[ls]]\n"),
        "yaml_unsafe_tag",
        line=3,
    ),
    Case("yaml-local-tag", config_file("title: !shell ls\n"), "yaml_unsafe_tag", line=1),
    Case(
        "yaml-not-utf8",
        config_file("title: ok\nshort_description: caf\xe9\n".encode("latin-1")),
        "not_utf8",
        line=2,
    ),
    Case("yaml-utf16", config_file("title: x\n".encode("utf-16")), "not_utf8", line=1),
    Case("yaml-nul-byte", config_file(b"title: a\x00b\n"), "binary_text"),
    Case("yaml-control-char", config_file("title: ok\nshort_description: a\x07b\n"), "yaml_syntax", line=2),
    Case("yaml-deep-flow", config_file(DEEP_FLOW), "yaml_too_deep"),
    Case("yaml-deep-block", config_file(DEEP_BLOCK), "yaml_too_deep", line=65),
    Case("yaml-recursive-alias", config_file("title: &a [x, *a]\n"), "yaml_too_deep", line=1),
    Case("yaml-syntax", config_file("title: x\nleaderboard: [\n  - id: 1\n"), "yaml_syntax", line=3),
    Case("yaml-two-documents", config_file("title: a\n---\ntitle: b\n"), "yaml_syntax", line=2),
    Case("yaml-list", config_file("- title: x\n"), "not_a_mapping", line=1),
    Case("yaml-scalar", config_file("just some text\n"), "not_a_mapping", line=1),
    Case("yaml-empty", config_file(b""), "not_a_mapping", line=1),
    Case("yaml-key-not-scalar", config_file("title: x\n[a, b]: 1\n"), "yaml_bad_key", line=2),
    Case("yaml-bad-merge", config_file("title: x\nimage: {<<: 3}\n"), "yaml_bad_merge", line=2),
    Case(  # a YAML timestamp that is no date
        "yaml-impossible-timestamp",
        folder_text("start_date: 2020-01-01 00:00:00", "start_date: 2020-02-30 00:00:00"),
        "yaml_bad_value",
        line=8,
    ),
    Case(
        "config-too-large",
        config_file("# padding\n" * 500 + "title: x\n"),
        "config_too_large",
        CFG,
        limits=TIGHT,
    ),
    # semantic rules -------------------------------------------------------------------------------
    Case(
        "duplicate-phase-id",
        folder(lambda c: add_phase(c, id=1)),
        "duplicate_id",
        key="challenge_phases.1.id",
    ),
    Case(
        "duplicate-leaderboard-id",
        folder(lambda c: c["leaderboard"].append(copy.deepcopy(c["leaderboard"][0]))),
        "duplicate_id",
        key="leaderboard.1.id",
    ),
    Case(
        "duplicate-split-id",
        folder(lambda c: c["dataset_splits"].append({"id": 1, "name": "B", "codename": "b"})),
        "duplicate_id",
        key="dataset_splits.1.id",
    ),
    Case(
        "duplicate-phase-codename",
        folder(lambda c: add_phase(c, codename="dev")),
        "duplicate_codename",
        key="challenge_phases.1.codename",
    ),
    Case(
        "duplicate-split-codename",
        folder(lambda c: c["dataset_splits"].append({"id": 2, "name": "B", "codename": "test_split"})),
        "duplicate_codename",
        key="dataset_splits.1.codename",
    ),
    Case(
        "dangling-phase-reference",
        folder(set_in("challenge_phase_splits.0.challenge_phase_id", 9)),
        "dangling_reference",
        key="challenge_phase_splits.0.challenge_phase_id",
    ),
    Case(
        "dangling-split-reference",
        folder(set_in("challenge_phase_splits.0.dataset_split_id", 5)),
        "dangling_reference",
        key="challenge_phase_splits.0.dataset_split_id",
    ),
    Case(
        "no-submission-limit-at-all",
        folder(lambda c: c["challenge_phases"][0].pop("max_submissions")),
        "max_submissions_per_month_null",
        key="challenge_phases.0.max_submissions_per_month",
        line=("challenge_phases", 0),
    ),
    Case(
        "no-dataset-splits",
        folder(lambda c: c.update(dataset_splits=[], challenge_phase_splits=[])),
        "missing_dataset_splits_key",
        key="dataset_splits",
    ),
    Case(
        "wrong-type-int",
        folder(set_in("challenge_phases.0.max_submissions", "lots")),
        "wrong_type",
        key="challenge_phases.0.max_submissions",
    ),
    Case("wrong-type-list", folder(set_in("leaderboard", "Total")), "wrong_type", key="leaderboard"),
    Case("wrong-type-bool", folder(set_in("published", "perhaps")), "wrong_type", key="published"),
    Case("wrong-type-title", folder(set_in("title", {"en": "x"})), "wrong_type", key="title"),
    Case("missing-title", folder(lambda c: c.pop("title")), "missing_key", key="title", line=()),
    Case(
        "missing-phase-codename",
        folder(lambda c: c["challenge_phases"][0].pop("codename")),
        "missing_key",
        key="challenge_phases.0.codename",
        line=("challenge_phases", 0),
    ),
    Case("bad-date", folder(set_in("start_date", "next monday")), "bad_value", key="start_date"),
    Case(  # valid, but past datetime.max once converted to UTC
        "date-overflows-utc",
        folder_text("end_date: 2099-12-31 23:59:59", "end_date: 9999-12-31 23:59:59-05:00"),
        "bad_value",
        key="end_date",
    ),
    Case(
        "end-before-start",
        folder(set_in("end_date", builders.dt.datetime(2019, 1, 1))),
        "start_date_after_end_date",
        key="start_date",
    ),
    Case(
        "phase-end-before-start",
        folder(set_in("challenge_phases.0.end_date", builders.dt.datetime(2019, 1, 1))),
        "start_date_after_end_date",
        key="challenge_phases.0.start_date",
    ),
    Case("five-tags", folder(set_in("tags", ["a", "b", "c", "d", "e"])), "extra_tags", key="tags"),
    Case("bad-domain", folder(set_in("domain", "Biology")), "wrong_domain", key="domain"),
    Case(
        "bad-prize-amount",
        folder(set_in("prizes", [{"rank": 1, "amount": "$100", "description": "x"}])),
        "bad_value",
        key="prizes.0.amount",
    ),
    Case(
        "prize-rank-zero",
        folder(set_in("prizes", [{"rank": 0, "amount": "100USD", "description": "x"}])),
        "bad_value",
        key="prizes.0.rank",
    ),
    Case(
        "duplicate-prize-rank",
        folder(set_in("prizes", [{"rank": 1, "amount": "100USD"}, {"rank": 1, "amount": "50USD"}])),
        "duplicate_prize_rank",
        key="prizes",
    ),
    Case(
        "select-one-with-public-submissions",
        folder(
            both(
                set_in("challenge_phases.0.is_submission_public", True),
                set_in("challenge_phases.0.is_restricted_to_select_one_submission", True),
            )
        ),
        "select_one_with_public_submissions",
        key="challenge_phases.0.is_restricted_to_select_one_submission",
    ),
    Case(
        "radio-without-options",
        folder(
            set_in(
                "challenge_phases.0.submission_meta_attributes",
                [{"name": "m", "description": "d", "type": "radio"}],
            )
        ),
        "meta_attribute_without_options",
        key="challenge_phases.0.submission_meta_attributes.0.options",
        line=("challenge_phases", 0, "submission_meta_attributes", 0),
    ),
    Case(
        "checkbox-empty-options",
        folder(
            set_in(
                "challenge_phases.0.submission_meta_attributes",
                [{"name": "m", "description": "d", "type": "checkbox", "options": []}],
            )
        ),
        "meta_attribute_without_options",
        key="challenge_phases.0.submission_meta_attributes.0.options",
    ),
    Case(
        "meta-attribute-bad-type",
        folder(
            set_in(
                "challenge_phases.0.submission_meta_attributes",
                [{"name": "m", "description": "d", "type": "dropdown"}],
            )
        ),
        "bad_value",
        key="challenge_phases.0.submission_meta_attributes.0.type",
    ),
    Case(
        "default-order-by-not-a-label",
        folder(set_in("leaderboard.0.schema.default_order_by", "Accuracy")),
        "incorrect_default_order_by",
        key="leaderboard.0.schema.default_order_by",
    ),
    Case(
        "duplicate-label",
        folder(set_in("leaderboard.0.schema.labels", ["Total", "Total"])),
        "duplicate_label",
        key="leaderboard.0.schema.labels",
    ),
    Case(
        "bad-visibility",
        folder(set_in("challenge_phase_splits.0.visibility", 4)),
        "bad_value",
        key="challenge_phase_splits.0.visibility",
    ),
    Case(
        "no-annotation-file",
        folder(lambda c: c["challenge_phases"][0].pop("test_annotation_file")),
        "missing_test_annotation_file",
        key="challenge_phases.0.test_annotation_file",
        line=("challenge_phases", 0),
    ),
    Case(
        "duplicate-meta-attribute",
        folder(
            set_in(
                "challenge_phases.0.submission_meta_attributes",
                [{"name": "m", "description": "d", "type": "text"}] * 2,
            )
        ),
        "duplicate_meta_attribute",
        key="challenge_phases.0.submission_meta_attributes",
    ),
    Case(
        "no-file-types",
        folder(set_in("challenge_phases.0.allowed_submission_file_types", " , ")),
        "no_file_types",
        key="challenge_phases.0.allowed_submission_file_types",
    ),
    # files the config names -------------------------------------------------------------------------
    Case(
        "script-path-names-no-file",
        folder(set_in("evaluation_script", "./")),
        "bad_path",
        key="evaluation_script",
    ),
    Case(
        "script-folder-too-large",
        folder(
            set_in("evaluation_script", "evaluation_script"),
            extra={"evaluation_script/__init__.py": "#" * 600, "evaluation_script/main.py": "#" * 600},
        ),
        "script_too_large",
        "evaluation_script",
        key="evaluation_script",
        limits=Limits(max_script_bytes=1000),
    ),
    Case(
        "template-traversal",
        folder(set_in("description", "../../etc/passwd")),
        "path_traversal",
        key="description",
    ),
    Case(
        "template-traversal-html",
        folder(set_in("description", f"templates/../../{ESCAPE}.html")),
        "path_traversal",
        key="description",
    ),
    Case(
        "template-absolute",
        folder(set_in("terms_and_conditions", "/etc/passwd.html")),
        "absolute_path",
        key="terms_and_conditions",
    ),
    Case(
        "template-windows-absolute",
        folder(set_in("evaluation_details", "C:\\Windows\\win.ini.html")),
        "absolute_path",
        key="evaluation_details",
    ),
    Case(
        "template-missing",
        folder(omit=("templates/submission_guidelines.html",)),
        "file_not_found",
        key="submission_guidelines",
    ),
    Case(
        "phase-template-missing",
        folder(omit=("templates/challenge_phase_1_description.html",)),
        "file_not_found",
        key="challenge_phases.0.description",
    ),
    Case(
        "template-not-html",
        folder(set_in("description", "templates/description.txt")),
        "not_html",
        key="description",
    ),
    Case(
        "template-is-folder",
        folder(set_in("description", "templates/sub.html"), extra={"templates/sub.html/index.html": "<p/>"}),
        "not_a_file",
        key="description",
    ),
    Case(
        "template-not-utf8",
        folder(extra={"templates/description.html": "<p>caf\xe9</p>".encode("cp1252")}),
        "not_utf8",
        "templates/description.html",
        line=1,
    ),
    Case(
        "template-nul",
        folder(extra={"templates/evaluation_details.html": b"<p>\x00</p>"}),
        "binary_text",
        "templates/evaluation_details.html",
    ),
    Case(
        "template-too-large",
        folder(extra={"templates/description.html": "<p>" + "x" * 5000 + "</p>"}),
        "file_too_large",
        "templates/description.html",
        limits=TIGHT,
    ),
    Case(
        "annotation-traversal",
        folder(set_in("challenge_phases.0.test_annotation_file", f"../{ESCAPE}.json")),
        "path_traversal",
        key="challenge_phases.0.test_annotation_file",
    ),
    Case(
        "annotation-is-folder",
        folder(set_in("challenge_phases.0.test_annotation_file", "annotations")),
        "not_a_file",
        key="challenge_phases.0.test_annotation_file",
    ),
    # folders and paths --------------------------------------------------------------------------
    Case(
        "folder-symlink-file",
        folder_plus(lambda r: (r / "templates" / "leak.html").symlink_to("/etc/passwd")),
        "symlink",
        "templates/leak.html",
    ),
    Case("folder-symlink-dir", folder_plus(lambda r: (r / "etc").symlink_to("/etc")), "symlink", "etc"),
    Case(
        "folder-fifo",
        folder_plus(lambda r: os.mkfifo(r / "annotations" / "pipe")),
        "special_file",
        "annotations/pipe",
    ),
    Case(
        "folder-too-many-files",
        folder_plus(lambda r: [(r / f"f{i}").write_text("x") for i in range(20)]),
        "too_many_files",
        None,
        limits=TIGHT,
    ),
    Case(
        "folder-oversized-file",
        folder_plus(lambda r: (r / "big.bin").write_bytes(bytes(20_000))),
        "file_too_large",
        "big.bin",
        limits=TIGHT,
    ),
    Case("folder-without-config", empty_folder, "no_config", None),
    Case("bundle-is-symlink", symlink_bundle, "symlink", None),
    Case("bundle-is-fifo", fifo_bundle, "special_file", None),
    Case("bundle-missing", lambda tmp: tmp / "nowhere.zip", "not_found", None),
]


# --- machinery -----------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _escape_candidates(tmp: Path) -> list[Path]:
    """Where a traversal or an executed payload would leave ``ESCAPE``."""
    places = {tmp.parent, tmp.parent.parent, Path.cwd(), Path("/tmp"), Path.home()}
    return [p / name for p in places for name in (ESCAPE, f"{ESCAPE}.py", f"{ESCAPE}.json", f"{ESCAPE}.html")]


def _config_text(source: Source) -> str:
    if isinstance(source, Path) and source.is_dir():
        return (source / CFG).read_text("utf-8")
    if isinstance(source, Path) and source.suffix == ".yaml":
        return source.read_text("utf-8")
    with zipfile.ZipFile(source) as zf:
        return zf.read(CFG).decode("utf-8")


def yaml_line(text: str, path: tuple) -> int:
    """1-based line of ``path`` straight from PyYAML's node marks (key line; item line for lists)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    line = node.start_mark.line
    for step in path:
        if isinstance(node, yaml.MappingNode):
            key_node, node = next((k, v) for k, v in node.value if k.value == str(step))
            line = key_node.start_mark.line
        else:
            node = node.value[step]
            line = node.start_mark.line
    return line + 1


def _path(key: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in key.split("."))


def _matching(problems: list[Problem], case: Case) -> list[Problem]:
    return [p for p in problems if p.code == case.code and p.severity == "error"]


@pytest.fixture
def guarded_tmp(tmp_path: Path):
    """tmp_path, checked afterwards: the escape target appears nowhere outside it."""
    yield tmp_path
    leaked = [p for p in _escape_candidates(tmp_path) if os.path.lexists(p)]
    assert not leaked, f"written outside tmp_path: {leaked}"


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_hostile_bundle_is_refused(case: Case, guarded_tmp: Path) -> None:
    source = case.build(guarded_tmp)
    before = _snapshot(guarded_tmp)
    with pytest.raises(BundleError) as info:
        read_bundle(source, limits=case.limits)
    assert _snapshot(guarded_tmp) == before, "reading a bundle must not write anything"

    error = info.value
    found = _matching(error.problems, case)
    assert found, f"expected {case.code}, got {[(p.code, p.file, p.line, p.key) for p in error.problems]}"
    problem = found[0]
    assert problem.message.strip()
    assert problem.file == (str(source) if case.file is None else case.file)
    if case.key is not None:
        assert problem.key == case.key
    if case.line == "auto" and case.key:
        assert problem.line == yaml_line(_config_text(source), _path(case.key)), problem
    elif case.line == "auto":
        assert problem.line is None, problem
    elif isinstance(case.line, tuple):
        assert problem.line == yaml_line(_config_text(source), case.line), problem
    else:
        assert problem.line == case.line, problem
    rendered = str(problem)
    assert rendered.startswith(problem.file + (f":{problem.line}" if problem.line else ""))
    if problem.key:
        assert f"[{problem.key}]" in rendered
    assert str(error)  # the one-line summary renders


def test_every_error_carries_file_and_message(guarded_tmp: Path) -> None:
    """Faults are reported together, each located: first every model error, then (once those are
    fixed) every cross-key error; errors come before warnings."""

    def mutate(c: dict) -> None:
        set_in("tags", list("abcde"))(c)
        set_in("domain", "XX")(c)
        set_in("challenge_phase_splits.0.leaderboard_id", 3)(c)
        c["dataset_splits"].append({"id": 1, "name": "x", "codename": "test_split"})

    with pytest.raises(BundleError) as info:
        read_bundle(folder(mutate)(guarded_tmp))
    codes = [p.code for p in info.value.errors]
    assert {"extra_tags", "wrong_domain"} <= set(codes)
    with pytest.raises(BundleError) as info:
        read_bundle(folder(both(mutate, set_in("tags", ["a"]), set_in("domain", "CV")))(guarded_tmp / "again"))
    codes = [p.code for p in info.value.errors]
    assert {"dangling_reference", "duplicate_id", "duplicate_codename"} <= set(codes)
    assert all(p.file == CFG and p.line and p.key for p in info.value.errors)
    severities = [p.severity for p in info.value.problems]
    assert severities == sorted(severities)  # "error" < "warning": errors come first


def test_unsafe_tag_is_not_executed(guarded_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(guarded_tmp)
    payload = f"title: !!python/object/apply:os.system ['touch {ESCAPE}']\n".encode()
    with pytest.raises(BundleError) as info:
        parse_config(payload)
    assert info.value.errors[0].code == "yaml_unsafe_tag"
    assert not (guarded_tmp / ESCAPE).exists()


def test_billion_laughs_is_refused_after_bounded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The alias bomb (9**9 values once expanded) is refused after at most MAX_NODES values are built."""
    built = 0
    real_build = yamlsafe._Builder.build

    def counted(self, node, path, depth):  # noqa: ANN001, ANN202
        nonlocal built
        built += 1
        if built > 2 * yamlsafe.MAX_NODES:  # unguarded, it would go on for 387 million values
            raise AssertionError("the expansion was not cut off at MAX_NODES")
        return real_build(self, node, path, depth)

    monkeypatch.setattr(yamlsafe._Builder, "build", counted)
    with pytest.raises(BundleError) as info:
        parse_config(BILLION_LAUGHS.encode())
    assert info.value.errors[0].code == "yaml_too_large"
    assert built == yamlsafe.MAX_NODES + 1


def test_bytes_stream_zip_is_checked_too() -> None:
    """An upload handed over as a file object goes through the same checks as a path."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        for name, payload in builders.bundle_files().items():
            zf.writestr(name, payload)
        zf.writestr(f"../{ESCAPE}", b"x")
    data.seek(0)
    with pytest.raises(BundleError) as info:
        read_bundle(data, name="upload.zip")
    problem = info.value.errors[0]
    assert (problem.code, problem.file) == ("path_traversal", f"upload.zip: ../{ESCAPE}")
