"""Reading a whole bundle: find the config, validate it, check and load every file it names."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from pydantic import ValidationError

from . import case_metadata
from .errors import BundleError, Problem
from .keys import sort_keys
from .model import ChallengeConfig
from .questionnaire import Questionnaire, load_questionnaire
from .requirements import requirement_problems
from .rules import Findings, check, check_audit_columns, check_partial, check_raw
from .script import Located, ScriptArchive, differences, folder_files, locate, zip_folder
from .script_imports import import_warnings
from .source import (
    CONFIG_NAMES,
    ZIP_ERRORS,
    ConfigOnlySource,
    DirSource,
    Limits,
    Source,
    ZipSource,
    check_unpackable,
    clean_relpath,
)  # fmt: skip
from .yamlsafe import LineMap, decode_text, load_yaml

IMAGE_TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_LOGO_MAGIC = {".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",), ".jpeg": (b"\xff\xd8\xff",)}


@dataclass
class Bundle:
    """A validated bundle. Holds its source open for streaming annotations; use as a context manager."""

    config: ChallengeConfig
    source: Source
    warnings: list[Problem] = field(default_factory=list)
    html: dict[str, str] = field(default_factory=dict)
    phase_html: dict[int, str] = field(default_factory=dict)
    logo: tuple[str, bytes] | None = None
    evaluation_script: ScriptArchive | None = None
    annotations: dict[int, str] = field(default_factory=dict)
    test_inputs: dict[int, str] = field(default_factory=dict)  # phase id -> file in the bundle
    environment_images: dict[int, str] = field(default_factory=dict)  # phase id -> docker save tarball in the bundle
    case_metadata: dict[int, str] = field(default_factory=dict)  # phase id -> hidden per-case attributes (CSV)
    questionnaire: Questionnaire | None = None  # the audit questionnaire the config names, validated
    missing_files: list[str] = field(default_factory=list)

    @property
    def config_only(self) -> bool:
        return isinstance(self.source, ConfigOnlySource)

    def open_annotation(self, phase_id: int) -> BinaryIO:
        return self.source.open(self.annotations[phase_id])

    def annotation_size(self, phase_id: int) -> int:
        return self.source.size(self.annotations[phase_id])

    def open_file(self, rel: str) -> BinaryIO:
        """Any file the config referenced (test inputs, environment image tarballs)."""
        return self.source.open(rel)

    def file_size(self, rel: str) -> int:
        return self.source.size(rel)

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_image_tarball_name(value: str) -> bool:
    """``environment_image`` names a ``docker save`` tarball in the bundle, not an image reference."""
    return value.lower().endswith(IMAGE_TARBALL_SUFFIXES)


def parse_config(data: bytes, file: str = "challenge_config.yaml") -> tuple[ChallengeConfig, LineMap, list[Problem]]:
    """Validate config text alone. Raises :class:`BundleError` with every error found."""
    raw, lines, warnings = load_yaml(data, file)
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise BundleError.single("not_a_mapping", f"the config must be a mapping of keys, not {got}", file=file, line=1)
    cleaned, key_warnings = sort_keys(raw, lines, file)
    findings = Findings(lines, file)
    findings.problems.extend(warnings + key_warnings)
    check_raw(cleaned, findings)
    try:
        config = ChallengeConfig.model_validate(cleaned)
    except ValidationError as exc:
        findings.from_validation_error(exc)
        check_partial(cleaned, findings)
        raise BundleError(_errors_first(findings.problems)) from None
    except (RecursionError, OverflowError) as exc:
        raise BundleError.single("bad_value", f"value out of range ({type(exc).__name__})", file=file) from None
    check(config, findings)
    if any(p.severity == "error" for p in findings.problems):
        raise BundleError(_errors_first(findings.problems))
    return config, lines, findings.problems


def _errors_first(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.severity != "error", p.line or 0))


def _config_candidates(names: Iterable[str]) -> list[str]:
    """The YAML files that may be the config when none is at the top: all of them, unless exactly one is a
    config name one folder down (a repository zipped or copied with its folder)."""
    yamls = sorted(n for n in names if n.lower().endswith((".yaml", ".yml")))
    nested = [n for n in yamls if n.count("/") == 1 and n.split("/")[1] in CONFIG_NAMES]
    return nested if len(yamls) != 1 and len(nested) == 1 else yamls


def open_source(path: str | Path | IO[bytes], limits: Limits, name: str | None = None) -> tuple[Source, bytes, str]:
    """Return the source, the config's bytes, and the config's name inside the bundle."""
    if not isinstance(path, str | Path):
        return _zip_source(ZipSource(path, limits, name or "bundle.zip"), limits)
    p = Path(path)
    if p.is_symlink():
        raise BundleError.single("symlink", "the bundle path is a symbolic link", file=str(p))
    if p.is_dir():
        src = DirSource(p, limits)
        for cfg in CONFIG_NAMES:
            if cfg in src._files:
                return src, src.read(cfg, limits.max_text_bytes), cfg
        # As in a zip (EvalAI's zip upload): one YAML file anywhere is the config, its folder the root.
        yamls = _config_candidates(src._files)
        if len(yamls) == 1:
            folder, _, cfg = yamls[0].rpartition("/")
            if folder:
                src = DirSource(p / folder, limits)
            return src, src.read(cfg, limits.max_text_bytes), yamls[0]
        if yamls:
            raise BundleError.single(
                "several_configs",
                f"no challenge_config.yaml at the top of the folder and {len(yamls)} YAML files elsewhere",
                file=str(p),
            )
        raise BundleError.single("no_config", "no challenge_config.yaml at the top of the folder", file=str(p))
    if not p.exists():
        raise BundleError.single("not_found", "no such file or folder", file=str(p))
    if not p.is_file():  # a FIFO or device would block or stream forever
        raise BundleError.single("special_file", "the bundle must be a regular file or a folder", file=str(p))
    if p.suffix.lower() in (".yaml", ".yml"):
        size = p.stat().st_size
        if size > limits.max_text_bytes:
            raise BundleError.single(
                "config_too_large", f"{size} bytes; the limit is {limits.max_text_bytes}", file=p.name
            )
        return ConfigOnlySource(), p.read_bytes(), name or p.name
    return _zip_source(ZipSource(p, limits, name or p.name), limits)  # name: what the uploader called the file


def _zip_source(src: ZipSource, limits: Limits) -> tuple[Source, bytes, str]:
    try:
        names = src.names()
        for cfg in CONFIG_NAMES:
            if cfg in names:
                return src, src.read(cfg, limits.max_text_bytes), cfg
        # EvalAI's legacy upload takes any single YAML anywhere in the zip (a nested folder works); a
        # repository zipped with its folder (GitHub's "Download ZIP") has the config one folder down.
        yamls = _config_candidates(names)
        if len(yamls) == 1:
            folder = yamls[0].rpartition("/")[0]
            src.with_prefix(folder)
            return src, src.read(yamls[0].rpartition("/")[2], limits.max_text_bytes), yamls[0]
        if yamls:
            raise BundleError.single(
                "several_configs",
                f"no challenge_config.yaml at the zip root and {len(yamls)} YAML files elsewhere",
                file=src.label,
            )
        raise BundleError.single("no_config", "no challenge_config.yaml in the zip", file=src.label)
    except BaseException:
        src.close()
        raise


def read_bundle(path: str | Path | IO[bytes], *, limits: Limits | None = None, name: str | None = None) -> Bundle:
    """Read and validate a bundle from a zip, a folder, or a lone config (config-only mode).

    Raises :class:`BundleError` naming file, line and key of every problem; nothing else escapes.
    """
    limits = limits or Limits()
    try:
        source, data, cfg_name = open_source(path, limits, name)
    except BundleError:
        raise
    except (*ZIP_ERRORS, RecursionError) as exc:
        raise BundleError.single("unreadable", f"cannot read the bundle ({exc})", file=str(name or path)) from None
    try:
        return _load(source, data, cfg_name, limits)
    except BundleError:
        source.close()
        raise
    except (*ZIP_ERRORS, RecursionError) as exc:
        source.close()
        raise BundleError.single("unreadable", f"cannot read the bundle ({exc})", file=cfg_name) from None


def _load(source: Source, data: bytes, cfg_name: str, limits: Limits) -> Bundle:
    config, lines, problems = parse_config(data, cfg_name)
    bundle = Bundle(config=config, source=source)
    f = Findings(lines, cfg_name)
    f.problems = problems

    def ref(raw: str, path: tuple, *, required: bool | None = True) -> str | None:
        """``raw`` as a clean path in the bundle; a missing file is an error, a warning, or (None) the caller's."""
        try:
            rel = clean_relpath(raw, file=cfg_name, key=".".join(map(str, path)), line=lines.line_for(path))
        except BundleError as exc:
            f.problems.extend(exc.problems)
            return None
        if isinstance(source, ConfigOnlySource):
            bundle.missing_files.append(rel)
            return None
        if required is None:
            return rel
        if not source.exists(rel):
            if required:
                f.add("file_not_found", f"{rel!r} is not in the bundle", path)
            else:
                f.warn("file_not_found", f"{rel!r} is not in the bundle; it is ignored", path)
            return None
        return rel

    for key, raw in config.html_fields().items():
        text = _html(source, ref(raw, (key,)), raw, (key,), f, limits)
        if text is not None:
            bundle.html[key] = text
    headers: dict[int, list[str]] = {}  # phase id -> the columns of its case metadata after case_id
    for i, phase in enumerate(config.challenge_phases):
        here = ("challenge_phases", i, "description")
        text = _html(source, ref(phase.description, here), phase.description, here, f, limits)
        if text is not None:
            bundle.phase_html[phase.id] = text
        if phase.test_annotation_file:
            rel = ref(phase.test_annotation_file, ("challenge_phases", i, "test_annotation_file"))
            if rel and source.is_dir(rel):
                f.add("not_a_file", f"{rel!r} is a folder", ("challenge_phases", i, "test_annotation_file"))
            elif rel:
                bundle.annotations[phase.id] = rel
        if phase.case_metadata_file:
            path = ("challenge_phases", i, "case_metadata_file")
            _case_metadata(source, ref(phase.case_metadata_file, path), path, phase.id, bundle, f, headers)
        for key, files in (("test_inputs", bundle.test_inputs), ("environment_image", bundle.environment_images)):
            raw = getattr(phase, key)
            if not raw or (key == "environment_image" and not is_image_tarball_name(raw)):
                continue  # an environment_image that is no tarball path is an image reference
            rel = ref(raw, ("challenge_phases", i, key))
            if rel and source.is_dir(rel):
                f.add("not_a_file", f"{rel!r} is a folder", ("challenge_phases", i, key))
            elif rel and key == "test_inputs" and rel.lower().endswith(".zip"):
                if _unpackable(source, rel, ("challenge_phases", i, key), f):  # the worker unpacks it
                    files[phase.id] = rel
            elif rel:
                files[phase.id] = rel
    check_audit_columns(config, headers, f)  # audit.subgroups must be columns of the case metadata
    if config.image:
        rel = ref(config.image, ("image",), required=False)
        if rel:
            bundle.logo = _logo(source, rel, f, limits)
    if config.evaluation_script:
        rel = ref(config.evaluation_script, ("evaluation_script",), required=None)
        found = locate(source, rel) if rel else None
        if found:
            bundle.evaluation_script = _script(source, found, rel, f, limits)
            if bundle.evaluation_script is not None:
                f.problems += import_warnings(bundle.evaluation_script.data, rel, config.environment())
        elif rel:
            f.add("file_not_found", f"{rel!r} is not in the bundle", ("evaluation_script",))
    if config.questionnaire:
        rel = ref(config.questionnaire, ("questionnaire",))
        if rel and source.is_dir(rel):
            f.add("not_a_file", f"{rel!r} is a folder", ("questionnaire",))
        elif rel:
            try:  # the file's own problems name the file and its lines
                bundle.questionnaire = load_questionnaire(source.read(rel, limits.max_text_bytes), rel)
            except BundleError as exc:
                f.problems.extend(exc.problems)
    if bundle.missing_files:
        f.warn(
            "config_only",
            f"config-only mode: {len(set(bundle.missing_files))} referenced file(s) not checked",
            (),
        )
    bundle.warnings = [p for p in f.problems if p.severity == "warning"]
    errors = [p for p in f.problems if p.severity == "error"]
    if errors:
        raise BundleError(_errors_first(f.problems))
    return bundle


def _unpackable(source: Source, rel: str, path: tuple, f: Findings) -> bool:
    """Whether the zip ``rel`` passes the worker's unpacking rule; its problems are filed under the key ``path``."""
    try:
        check_unpackable(source, rel)
    except BundleError as exc:
        f.problems.extend(_under_key(exc.problems, f, path))
        return False
    return True


def _under_key(problems: list[Problem], f: Findings, path: tuple) -> list[Problem]:
    """Problems found inside a file the config names, located at the key that names it."""
    key = ".".join(map(str, path))
    return [Problem(p.code, p.message, file=p.file, line=f.lines.line_for(path), key=key) for p in problems]


def _case_metadata(
    source: Source, rel: str | None, path: tuple, phase_id: int, bundle: Bundle, f: Findings, headers: dict
) -> None:
    """A phase's hidden case attributes: a CSV whose header starts with case_id (:mod:`.case_metadata`);
    its columns go to ``headers`` (phase id -> columns after case_id) for the audit's subgroups."""
    if rel is None:
        return
    if source.is_dir(rel):
        f.add("not_a_file", f"{rel!r} is a folder", path)
        return
    try:
        data = source.read(rel, case_metadata.MAX_BYTES)
        found = case_metadata.problems(data, rel)
    except BundleError as exc:
        data, found = b"", [exc.summary()]
    for problem in found:
        f.add("bad_case_metadata", problem, path)
    if not found:
        bundle.case_metadata[phase_id] = rel
        headers[phase_id] = case_metadata.columns(data, rel)


def _html(source: Source, rel: str | None, raw: str, path: tuple, f: Findings, limits: Limits) -> str | None:
    if not str(raw).lower().strip().endswith((".html", ".htm")):
        f.add("not_html", f"{raw!r} must be an .html file", path)
        return None
    if rel is None:
        return None
    if source.is_dir(rel):
        f.add("not_a_file", f"{rel!r} is a folder", path)
        return None
    try:
        return decode_text(source.read(rel, limits.max_text_bytes), rel)
    except BundleError as exc:
        f.problems.extend(exc.problems)
        return None


def _logo(source: Source, rel: str, f: Findings, limits: Limits) -> tuple[str, bytes] | None:
    suffix = "." + rel.rsplit(".", 1)[-1].lower() if "." in rel else ""
    if suffix not in _LOGO_MAGIC:
        f.warn("bad_logo", f"logo {rel!r} is not .png/.jpg/.jpeg; it is ignored (as EvalAI does)", ("image",))
        return None
    try:
        data = source.read(rel, limits.max_logo_bytes)
    except BundleError as exc:
        f.warn("bad_logo", f"logo ignored: {exc.summary()}", ("image",))
        return None
    if not data.startswith(_LOGO_MAGIC[suffix]):
        f.warn("bad_logo", f"logo {rel!r} is not a real {suffix[1:].upper()} image; it is ignored", ("image",))
        return None
    return rel, data


def _compare_with_folder(source: Source, folder: str, rel: str, data: bytes, f: Findings, limits: Limits) -> None:
    try:
        differ = differences(source, folder, data, limits)
    except (BundleError, *ZIP_ERRORS):
        return  # a damaged zip is reported by the checks that follow
    if differ:
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        f.warn(
            "evaluation_script_differs_from_folder",
            f"{rel!r} is used, but it differs from the folder '{folder}/' ({shown}); EvalAI's GitHub Action would"
            f" rebuild it from the folder. Delete the zip to have Assay build it from the folder too",
            ("evaluation_script",),
        )


def _script(source: Source, found: Located, key_rel: str, f: Findings, limits: Limits) -> ScriptArchive | None:
    """Load the evaluation script as a flat zip, checked as strictly as the bundle itself."""
    here = ("evaluation_script",)
    notes = list(found.notes)
    try:
        if found.is_folder:
            names, stale, left_out = folder_files(source, found.rel, key_rel.rsplit("/", 1)[-1])
            if stale and not names:
                data = source.read(f"{found.rel}/{stale}", limits.max_script_bytes)
                notes.append(
                    f"the folder holds only '{found.rel}/{stale}' (run.sh left it there): that zip is the script"
                )
            else:
                data = zip_folder(source, found.rel, names, limits)
                notes.append(f"{len(names)} file(s) zipped with paths relative to '{found.rel}/'")
                if stale:
                    notes.append(
                        f"'{found.rel}/{stale}', a zip run.sh left inside the folder, is left out (it is a copy of"
                        " the folder; zipping it in would nest a possibly stale script in the script)"
                    )
                if left_out:
                    notes.append(f"{len(left_out)} cache file(s) left out (__pycache__, *.pyc, .DS_Store)")
            if found.notes or stale or left_out:  # say what was done when it was more than the config asked
                f.warn("evaluation_script_folder_zipped", "; ".join(notes), here)
        else:
            if not found.rel.lower().endswith(".zip"):
                f.add("evaluation_script_not_zip", f"{found.rel!r} must be a .zip file or a folder", here)
                return None
            data = source.read(found.rel, limits.max_script_bytes)
            folder = found.rel[: -len(".zip")]
            if source.is_dir(folder):
                _compare_with_folder(source, folder, found.rel, data, f, limits)
        rel = found.rel
        inner = ZipSource(io.BytesIO(data), limits, rel)
        try:
            names = inner.names()
        finally:
            inner.close()
    except BundleError as exc:
        f.problems.extend(_under_key(exc.problems, f, here))
        return None
    if "__init__.py" not in names:
        tops = {n.split("/", 1)[0] for n in names if "/" in n}
        hint = (
            f"; its files sit in the folder {next(iter(tops))!r}: zip them without that folder (zip -j)"
            if len(tops) == 1
            else ""
        )
        f.warn(
            "script_without_init",
            f"{rel} has no __init__.py at its root exposing evaluate(); evaluation will fail{hint}",
            here,
        )
    if "requirements.txt" in names:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            text = archive.read("requirements.txt").decode("utf-8", errors="replace")
        for problem in requirement_problems(text):
            f.add("requirement_not_installable", f"{rel}: {problem}", here)
    return ScriptArchive(data=data, names=names, has_requirements="requirements.txt" in names)
