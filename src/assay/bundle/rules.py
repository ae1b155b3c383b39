"""Checks that span several keys: references between ids, uniqueness, dates in order.

Error codes follow EvalAI's ``error_message_dict`` names where it has one, so tools that parsed
EvalAI's messages can match on them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import ValidationError

from .errors import Problem
from .model import DEFAULT_META_NAMES, ChallengeConfig
from .yamlsafe import LineMap, Path


class Findings:
    """Collects problems with the line of the key they concern."""

    def __init__(self, lines: LineMap, file: str) -> None:
        self.lines = lines
        self.file = file
        self.problems: list[Problem] = []

    def add(self, code: str, message: str, path: Path, severity: str = "error") -> None:
        self.problems.append(
            Problem(
                code,
                message,
                file=self.file,
                line=self.lines.line_for(path) if path else None,
                key=".".join(str(p) for p in path) or None,
                severity=severity,  # type: ignore[arg-type]
            )
        )

    def warn(self, code: str, message: str, path: Path) -> None:
        self.add(code, message, path, "warning")

    def from_validation_error(self, exc: ValidationError, prefix: Path = ()) -> None:
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            path = (*prefix, *(("schema" if p == "schema_" else p) for p in loc))
            kind = err["type"]
            if kind == "missing":
                self.add("missing_key", f"required key {path[-1]!r} is missing", path)
                continue
            value = err.get("input")
            shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
            msg = err["msg"].removeprefix("Value error, ")
            # EvalAI has names of its own for two of these (``error_message_dict``); keep them.
            if path == ("tags",) and kind == "too_long":
                self.add("extra_tags", f"at most 4 tags are allowed (got {len(value or [])})", path)
            elif path == ("domain",) and kind == "literal_error":
                self.add("wrong_domain", f"{msg} (got {shown})", path)
            else:
                self.add(
                    "wrong_type" if "type" in kind or "parsing" in kind else "bad_value",
                    f"{msg} (got {shown})",
                    path,
                )


def _duplicates(values: Iterable) -> list:
    return [v for v, n in Counter(values).items() if n > 1]


def check(config: ChallengeConfig, f: Findings) -> None:
    """Add every cross-key problem of ``config`` to ``f``."""
    _dates(config, f)
    _ids(config, f)
    _leaderboards(config, f)
    _phases(config, f)
    _phase_splits(config, f)
    _prizes(config, f)


def _dates(config: ChallengeConfig, f: Findings) -> None:
    if config.start_date > config.end_date:
        f.add("start_date_after_end_date", "start_date is after end_date", ("start_date",))
    for i, phase in enumerate(config.challenge_phases):
        if phase.start_date > phase.end_date:
            f.add(
                "start_date_after_end_date",
                f"phase {phase.codename!r}: start_date is after end_date",
                ("challenge_phases", i, "start_date"),
            )


def _ids(config: ChallengeConfig, f: Findings) -> None:
    for section, items, attr in (
        ("leaderboard", config.leaderboard, "id"),
        ("challenge_phases", config.challenge_phases, "id"),
        ("dataset_splits", config.dataset_splits, "id"),
        ("challenge_phases", config.challenge_phases, "codename"),
        ("dataset_splits", config.dataset_splits, "codename"),
    ):
        values = [getattr(item, attr) for item in items]
        for dup in _duplicates(values):
            index = len(values) - 1 - values[::-1].index(dup)
            f.add(
                f"duplicate_{attr}",
                f"{section}: {attr} {dup!r} is used more than once",
                (section, index, attr),
            )


def _leaderboards(config: ChallengeConfig, f: Findings) -> None:
    for i, board in enumerate(config.leaderboard):
        schema = board.schema_
        here = ("leaderboard", i, "schema")
        for dup in _duplicates(schema.labels):
            f.add("duplicate_label", f"label {dup!r} appears twice", (*here, "labels"))
        if schema.default_order_by not in schema.labels:
            f.add(
                "incorrect_default_order_by",
                f"default_order_by {schema.default_order_by!r} is not one of the labels {schema.labels}",
                (*here, "default_order_by"),
            )
        for label, meta in (schema.metadata or {}).items():
            if label not in schema.labels:
                f.warn(
                    "metadata_unknown_label",
                    f"metadata for {label!r}, which is not a label",
                    (*here, "metadata", label),
                )
            elif meta.sort_ascending is None and label == schema.default_order_by:
                f.warn(
                    "sort_ascending_missing",
                    f"metadata for {label!r} has no sort_ascending: the phase-split's order applies"
                    " (EvalAI would sort this label ascending)",
                    (*here, "metadata", label),
                )


def _phases(config: ChallengeConfig, f: Findings) -> None:
    for i, phase in enumerate(config.challenge_phases):
        here = ("challenge_phases", i)
        if phase.is_submission_public and phase.is_restricted_to_select_one_submission:
            f.add(
                "select_one_with_public_submissions",
                "is_submission_public and is_restricted_to_select_one_submission cannot both be true",
                (*here, "is_restricted_to_select_one_submission"),
            )
        environment_kind = config.is_docker_based and not config.is_static_dataset_code_upload
        if environment_kind and not phase.environment_image:
            f.warn(
                "missing_environment_image",
                f"phase {phase.codename!r} has no environment_image: in a docker-based challenge without"
                " is_static_dataset_code_upload the host's environment runs each agent, so its submissions"
                " fail until one is set",
                (*here, "environment_image"),
            )
        if phase.test_inputs and not (config.is_docker_based and config.is_static_dataset_code_upload):
            f.warn(
                "test_inputs_unused",
                "test_inputs is only given to static-dataset container submissions (is_docker_based and"
                " is_static_dataset_code_upload); it is ignored here",
                (*here, "test_inputs"),
            )
        if not phase.test_annotation_file and not config.remote_evaluation and not environment_kind:
            f.add(
                "missing_test_annotation_file",
                f"phase {phase.codename!r} needs test_annotation_file (only remote-evaluation challenges may omit it)",
                (*here, "test_annotation_file"),
            )
        for j, attr in enumerate(phase.submission_meta_attributes or []):
            if attr.type in ("radio", "checkbox") and not attr.options:
                f.add(
                    "meta_attribute_without_options",
                    f"meta attribute {attr.name!r} of type {attr.type} needs at least one option",
                    (*here, "submission_meta_attributes", j, "options"),
                )
            if not attr.description:
                f.warn(
                    "meta_attribute_without_description",
                    f"meta attribute {attr.name!r} has no description; participants see only its name",
                    (*here, "submission_meta_attributes", j, "description"),
                )
        names = [a.name for a in phase.submission_meta_attributes or []]
        for dup in _duplicates(names):
            f.add(
                "duplicate_meta_attribute",
                f"meta attribute {dup!r} is defined twice",
                (*here, "submission_meta_attributes"),
            )
        for j, attr in enumerate(phase.default_submission_meta_attributes or []):
            if attr.name not in DEFAULT_META_NAMES:
                f.warn(
                    "unknown_default_meta_attribute",
                    f"{attr.name!r} is not a built-in field ({', '.join(DEFAULT_META_NAMES)}); it is ignored",
                    (*here, "default_submission_meta_attributes", j, "name"),
                )
        if not phase.file_types:
            f.add(
                "no_file_types",
                "allowed_submission_file_types lists no extension",
                (*here, "allowed_submission_file_types"),
            )
        if not any(ps.challenge_phase_id == phase.id for ps in config.challenge_phase_splits):
            f.warn(
                "phase_without_leaderboard",
                f"phase {phase.codename!r} has no challenge_phase_splits entry, so it has no leaderboard",
                (*here, "id"),
            )


def _phase_splits(config: ChallengeConfig, f: Findings) -> None:
    targets = {
        "challenge_phase_id": {p.id for p in config.challenge_phases},
        "leaderboard_id": {b.id for b in config.leaderboard},
        "dataset_split_id": {s.id for s in config.dataset_splits},
    }
    seen: set = set()
    for i, ps in enumerate(config.challenge_phase_splits):
        here = ("challenge_phase_splits", i)
        for key, ids in targets.items():
            if getattr(ps, key) not in ids:
                f.add(
                    "dangling_reference",
                    f"{key} {getattr(ps, key)} matches no entry (known: {sorted(ids) or 'none'})",
                    (*here, key),
                )
        if ps.key in seen:
            f.add(
                "duplicate_phase_split",
                f"phase {ps.challenge_phase_id}, leaderboard {ps.leaderboard_id}"
                f" and split {ps.dataset_split_id} are paired twice",
                here,
            )
        seen.add(ps.key)
    if config.challenge_phases and not config.dataset_splits:
        f.warn("no_dataset_splits", "no dataset_splits: results cannot reach any leaderboard", ())


def _prizes(config: ChallengeConfig, f: Findings) -> None:
    ranks = [p.rank for p in config.prizes]
    for dup in _duplicates(ranks):
        f.add("duplicate_prize_rank", f"two prizes for rank {dup}", ("prizes",))
