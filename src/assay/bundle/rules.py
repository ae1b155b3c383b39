"""Checks that span several keys: references between ids, uniqueness, dates in order.

Error codes follow EvalAI's ``error_message_dict`` names where it has one, so tools that parsed
EvalAI's messages can match on them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import TypeAdapter, ValidationError

from .errors import Problem
from .model import DEFAULT_META_NAMES, PACKAGE_KEYS, ChallengeConfig, Leaderboard, Phase
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


def check_raw(raw: dict, f: Findings) -> None:
    """EvalAI's rules about keys being there at all, on the config as written, before the models see it.

    They hold whether or not the values then validate, so a config with several mistakes hears of
    all of them together, as EvalAI reports them (its own example3 expects exactly that).
    """
    _evaluation_script_key(raw, f)
    _phase_limits(raw, f)
    _split_sections(raw, f)
    _phase_split_keys(raw, f)


def check_partial(raw: dict, f: Findings) -> None:
    """When the whole config fails its types, the rules of each leaderboard that is fine on its own still run."""
    for i, item in enumerate(_as_list(raw.get("leaderboard"))):
        try:
            board = Leaderboard.model_validate(item)
        except (ValidationError, RecursionError, OverflowError):
            continue  # its errors are already reported against the whole config
        _leaderboard(i, board, f)


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else []


def _flag(value: object) -> bool:
    """A yes/no key as the model will read it; anything unreadable counts as no (the model reports it)."""
    try:
        return TypeAdapter(bool).validate_python(value)
    except ValidationError:
        return False


def _evaluation_script_key(raw: dict, f: Findings) -> None:
    if str(raw.get("evaluation_script") or "").strip():
        return
    if _flag(raw.get("remote_evaluation")):
        return  # the host's own machine evaluates
    if _flag(raw.get("is_docker_based")) and not _flag(raw.get("is_static_dataset_code_upload")):
        return  # the host's environment container scores each agent
    f.add(
        "missing_key",
        "required key 'evaluation_script' is missing (EvalAI: there is no key for the evaluation script)",
        ("evaluation_script",),
    )


def _phase_limits(raw: dict, f: Findings) -> None:
    """EvalAI copies ``max_submissions`` into a missing ``max_submissions_per_month``; with neither, it is null."""
    for i, phase in enumerate(_as_list(raw.get("challenge_phases"))):
        if not isinstance(phase, dict):
            continue
        if phase.get("max_submissions_per_month") is None and phase.get("max_submissions") is None:
            f.add(
                "max_submissions_per_month_null",
                f"phase {phase.get('codename') or phase.get('id')!r}: max_submissions_per_month is null — neither it"
                " nor max_submissions is set; EvalAI copies max_submissions into it and refuses the null"
                " ('This field may not be null'). Set max_submissions_per_month or max_submissions",
                ("challenge_phases", i, "max_submissions_per_month"),
            )


def _split_sections(raw: dict, f: Findings) -> None:
    """EvalAI refuses a config with phases but no dataset splits or no phase splits: nothing could be ranked."""
    if not _as_list(raw.get("challenge_phases")):
        return
    if not raw.get("dataset_splits"):
        f.add(
            "missing_dataset_splits_key",
            "there is no dataset_splits entry (EvalAI: 'There is no key for dataset splits'): results could reach no"
            " leaderboard",
            ("dataset_splits",),
        )
    if not raw.get("challenge_phase_splits"):
        f.add(
            "no_key_for_challenge_phase_splits",
            "there is no challenge_phase_splits entry (EvalAI: 'There is no key for challenge phase splits'): no"
            " phase has a leaderboard",
            ("challenge_phase_splits",),
        )


_PHASE_SPLIT_SETTINGS = {
    "visibility": "visibility 3 (public)",
    "leaderboard_decimal_precision": "2 decimals",
    "is_leaderboard_order_descending": "higher is better",
}


def _phase_split_keys(raw: dict, f: Findings) -> None:
    """EvalAI's zip upload fills in these three; its GitHub validator refuses their absence. Assay fills them in."""
    for i, ps in enumerate(_as_list(raw.get("challenge_phase_splits"))):
        if not isinstance(ps, dict):
            continue
        missing = [key for key in _PHASE_SPLIT_SETTINGS if key not in ps]
        if missing:
            f.warn(
                "phase_split_defaults",
                f"{', '.join(missing)} not set: the default applies"
                f" ({', '.join(_PHASE_SPLIT_SETTINGS[k] for k in missing)}), as in EvalAI's zip upload;"
                " EvalAI's GitHub validator requires them (missing_keys_in_challenge_phase_splits)",
                ("challenge_phase_splits", i),
            )


def check(config: ChallengeConfig, f: Findings) -> None:
    """Add every cross-key problem of ``config`` to ``f``."""
    _dates(config, f)
    _ids(config, f)
    _leaderboards(config, f)
    _phases(config, f)
    _phase_splits(config, f)
    _prizes(config, f)
    _audits(config, f)


def _dates(config: ChallengeConfig, f: Findings) -> None:
    challenge_dates(config.start_date, config.end_date, f)
    for i, phase in enumerate(config.challenge_phases):
        phase_dates(phase, f, ("challenge_phases", i))


def challenge_dates(start, end, f: Findings) -> None:
    """The challenge's dates in order (the web's editor of a challenge runs this rule too)."""
    if start > end:
        f.add("start_date_after_end_date", "start_date is after end_date", ("start_date",))


def phase_dates(phase: Phase, f: Findings, here: Path) -> None:
    """A phase's dates in order (the web's editor of a phase runs this rule too)."""
    if phase.start_date > phase.end_date:
        f.add(
            "start_date_after_end_date",
            f"phase {phase.codename!r}: start_date is after end_date",
            (*here, "start_date"),
        )


def phase_alone(phase: Phase, f: Findings, here: Path) -> None:
    """The rules of one phase that need no other section: its dates, its flags, its file types."""
    phase_dates(phase, f, here)
    _select_one(phase, f, here)
    _file_types(phase, f, here)


def _select_one(phase: Phase, f: Findings, here: Path) -> None:
    if phase.is_submission_public and phase.is_restricted_to_select_one_submission:
        f.add(
            "select_one_with_public_submissions",
            "is_submission_public and is_restricted_to_select_one_submission cannot both be true",
            (*here, "is_restricted_to_select_one_submission"),
        )


def _file_types(phase: Phase, f: Findings, here: Path) -> None:
    if not phase.file_types:
        f.add(
            "no_file_types",
            "allowed_submission_file_types lists no extension",
            (*here, "allowed_submission_file_types"),
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
        _leaderboard(i, board, f)


def _leaderboard(i: int, board: Leaderboard, f: Findings) -> None:
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
        _select_one(phase, f, here)
        environment_kind = config.is_docker_based and not config.is_static_dataset_code_upload
        if environment_kind and not phase.environment_image:
            f.warn(
                "missing_environment_image",
                f"phase {phase.codename!r} has no environment_image: in a docker-based challenge without"
                " is_static_dataset_code_upload the host's environment runs each agent, so its submissions"
                " fail until one is set",
                (*here, "environment_image"),
            )
        _data_package(phase, f, here)
        package_inputs = phase.data_package is not None and phase.data_package.test_inputs
        if (phase.test_inputs or package_inputs) and not (
            config.is_docker_based and config.is_static_dataset_code_upload
        ):
            f.warn(
                "test_inputs_unused",
                "test_inputs is only given to static-dataset container submissions (is_docker_based and"
                " is_static_dataset_code_upload); it is ignored here",
                (*here, "test_inputs") if phase.test_inputs else (*here, "data_package", "test_inputs"),
            )
        if (
            not phase.test_annotation_file
            and not phase.annotations_from_package
            and not config.remote_evaluation
            and not environment_kind
        ):
            f.add(
                "missing_test_annotation_file",
                f"phase {phase.codename!r} needs test_annotation_file or data_package.annotations (only"
                " remote-evaluation challenges may omit both)",
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
        _file_types(phase, f, here)
        if not any(ps.challenge_phase_id == phase.id for ps in config.challenge_phase_splits):
            f.warn(
                "phase_without_leaderboard",
                f"phase {phase.codename!r} has no challenge_phase_splits entry, so it has no leaderboard",
                (*here, "id"),
            )


def _data_package(phase: Phase, f: Findings, here: Path) -> None:
    """The phase key ``data_package``: it names at least one file, each under the folder of the role its key
    needs (a package's top-level folders are its files' roles), and each from one place only (the package or
    the bundle). Whether the package, the version and the files exist is the server's to
    say, when the bundle is imported."""
    ref = phase.data_package
    if ref is None:
        return
    if not ref.files():
        f.add(
            "data_package_names_no_file",
            f"data_package {ref.name!r} names no file: set annotations, test_inputs or case_metadata",
            (*here, "data_package"),
        )
    for key, (role, bundle_key) in PACKAGE_KEYS.items():
        path = getattr(ref, key)
        if path and path.split("/", 1)[0] != role:  # a package's top-level folder is its files' role
            f.add(
                "data_package_wrong_folder",
                f"data_package.{key} must name a file under {role}/ (a package's {role} files), not {path!r}",
                (*here, "data_package", key),
            )
        if path and getattr(phase, bundle_key):
            f.add(
                "data_package_conflict",
                f"phase {phase.codename!r} names both {bundle_key} and data_package.{key}: the file comes from"
                f" the bundle or from the package, not both; remove one",
                (*here, "data_package", key),
            )


def _phase_splits(config: ChallengeConfig, f: Findings) -> None:
    targets = {
        "challenge_phase_id": {p.id for p in config.challenge_phases},
        "leaderboard_id": {b.id for b in config.leaderboard},
        "dataset_split_id": {s.id for s in config.dataset_splits},
    }
    first: dict[tuple[int, int, int], int] = {}
    for i, ps in enumerate(config.challenge_phase_splits):
        here = ("challenge_phase_splits", i)
        for key, ids in targets.items():
            if getattr(ps, key) not in ids:
                f.add(
                    "dangling_reference",
                    f"{key} {getattr(ps, key)} matches no entry (known: {sorted(ids) or 'none'})",
                    (*here, key),
                )
        if ps.key in first:
            _duplicate_phase_split(config, first[ps.key], i, f)
        first.setdefault(ps.key, i)


def _duplicate_phase_split(config: ChallengeConfig, kept: int, again: int, f: Findings) -> None:
    """EvalAI's zip upload creates a row for each copy (its model has no unique constraint); one row says it all.

    The first entry is the one kept, so the warning names any setting of the later copy that is lost.
    """
    old, new = config.challenge_phase_splits[kept], config.challenge_phase_splits[again]
    differs = [
        name
        for name in type(new).model_fields
        if name not in ("challenge_phase_id", "leaderboard_id", "dataset_split_id")
        and getattr(old, name) != getattr(new, name)
    ]
    lost = f"; its different {', '.join(differs)} is ignored" if differs else " (with the same settings)"
    f.warn(
        "duplicate_phase_split",
        f"phase {new.challenge_phase_id}, leaderboard {new.leaderboard_id} and split {new.dataset_split_id} are"
        f" paired again (first at challenge_phase_splits.{kept}): EvalAI's zip upload runs such configs, so"
        f" Assay accepts it and keeps one leaderboard, the first entry's{lost}. EvalAI's GitHub validator"
        " refuses the duplicate (duplicate_combinations_in_challenge_phase_splits)",
        ("challenge_phase_splits", again),
    )


def _prizes(config: ChallengeConfig, f: Findings) -> None:
    ranks = [p.rank for p in config.prizes]
    for dup in _duplicates(ranks):
        f.add("duplicate_prize_rank", f"two prizes for rank {dup}", ("prizes",))


# The figures each audit task computes (assay.audit; tests/bundle/test_audit_rules.py keeps the two in step).
# The bundle reader does not import assay.audit: that would make NumPy and scikit-learn a need of every CLI.
_CALIBRATION_FIGURES = ("brier", "log_loss", "ece", "slope", "intercept")
AUDIT_FIGURES: dict[str, tuple[str, ...]] = {
    "binary": (
        "sensitivity", "specificity", "ppv", "npv", "balanced_accuracy", "f1", "mcc", "auroc", "auprc",
        *_CALIBRATION_FIGURES,
    ),
    "ordinal": ("qwk", "accuracy", "referable_sensitivity", "referable_specificity", "coverage"),
    "multiclass": ("accuracy", "balanced_accuracy", "macro_f1", "kappa"),
    "regression": ("mae", "rmse", "bias", "r2"),
}  # fmt: skip
# The keys only some tasks take; each of these tasks needs them, every other task refuses them.
AUDIT_TASK_KEYS: dict[str, tuple[str, ...]] = {
    "binary": ("threshold",),
    "ordinal": ("grades", "referable_from"),
    "multiclass": ("grades",),
    "regression": (),
}


def audit_figures(phase: Phase) -> tuple[str, ...]:
    """The figure names the phase's audit summary holds (multiclass adds ``recall:<label>`` per label)."""
    audit = phase.audit
    if audit is None:
        return ()
    per_class = tuple(f"recall:{label}" for label in audit.grades or ()) if audit.task == "multiclass" else ()
    return AUDIT_FIGURES[audit.task] + per_class


def _audits(config: ChallengeConfig, f: Findings) -> None:
    """The phase key ``audit``: the task's own keys, subgroups from the case metadata, known figures."""
    boards = {b.id: b.schema_.labels for b in config.leaderboard}
    for i, phase in enumerate(config.challenge_phases):
        audit = phase.audit
        if audit is None:
            continue
        here = ("challenge_phases", i, "audit")
        for key in ("threshold", "grades", "referable_from"):
            given = getattr(audit, key) is not None
            if key in AUDIT_TASK_KEYS[audit.task] and not given:
                f.add("audit_key_missing", f"audit.{key} is required for a {audit.task} task", (*here, "task"))
            elif given and key not in AUDIT_TASK_KEYS[audit.task]:
                f.add("audit_key_not_for_task", f"audit.{key} does not apply to a {audit.task} task", (*here, key))
        grades = audit.grades or []
        if audit.grades is not None and len(grades) < 2:
            f.add(
                "audit_bad_grades",
                f"audit.grades must list at least two grades or labels, got {grades}",
                (*here, "grades"),
            )
        for dup in _duplicates(grades):
            f.add("audit_bad_grades", f"audit.grades lists {dup!r} twice", (*here, "grades"))
        if audit.task == "ordinal" and audit.referable_from is not None and audit.referable_from not in grades[1:]:
            f.add(
                "audit_bad_referable_from",
                f"audit.referable_from must be one of the grades above the lowest {grades[1:]}, "
                f"got {audit.referable_from!r}",
                (*here, "referable_from"),
            )
        if audit.subgroups and not phase.case_metadata_file and not phase.case_metadata_from_package:
            # from a package, the columns are checked when the bundle is imported (the file is on the server)
            f.add(
                "audit_subgroups_without_metadata",
                f"audit.subgroups {audit.subgroups} are columns of the phase's case_metadata_file (or"
                " data_package.case_metadata), which the phase does not set",
                (*here, "subgroups"),
            )
        for dup in _duplicates(audit.subgroups):
            f.add("audit_bad_subgroups", f"audit.subgroups names {dup!r} twice", (*here, "subgroups"))
        known = audit_figures(phase)
        labels = {
            label
            for ps in config.challenge_phase_splits
            if ps.challenge_phase_id == phase.id
            for label in boards.get(ps.leaderboard_id, [])
        }
        for label, figure in audit.intervals.items():
            if figure not in known:
                f.add(
                    "audit_unknown_figure",
                    f"audit.intervals: {figure!r} is not a figure of the {audit.task} task ({', '.join(known)})",
                    (*here, "intervals", label),
                )
            if labels and label not in labels:
                f.add(
                    "audit_unknown_label",
                    f"audit.intervals: {label!r} is not a label of the phase's leaderboards"
                    f" ({', '.join(sorted(labels))})",
                    (*here, "intervals", label),
                )


def check_audit_columns(config: ChallengeConfig, headers: dict[int, list[str]], f: Findings) -> None:
    """``audit.subgroups`` against the header of each phase's case metadata (phase id -> its columns after
    ``case_id``), once the reader has read them: a subgroup must be one of the columns."""
    for i, phase in enumerate(config.challenge_phases):
        if phase.audit is None or phase.id not in headers:
            continue
        for message in subgroup_problems(phase, headers[phase.id], phase.case_metadata_file or ""):
            f.add("audit_subgroup_not_a_column", message, ("challenge_phases", i, "audit", "subgroups"))


def subgroup_problems(phase: Phase, columns: list[str], rel: str) -> list[str]:
    """Each ``audit.subgroups`` name that is not one of ``columns`` (the case metadata's, after case_id):
    read from the bundle, or from a data package when the bundle is imported."""
    if phase.audit is None:
        return []
    return [
        f"audit.subgroups: {name!r} is not a column of {rel!r} ({', '.join(columns)})"
        for name in phase.audit.subgroups
        if name not in columns
    ]
