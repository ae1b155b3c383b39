"""The challenge bundle's config, key for key as EvalAI reads it, plus Assay's optional additions.

Defaults are EvalAI's (``reference/evalai.md`` §1.3-1.7). Keys are checked for type here; rules that
span several keys (references, uniqueness, dates in order) live in :mod:`assay.bundle.rules`.
Unknown keys never reach these models: :mod:`assay.bundle.keys` reports them as warnings first.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from . import environments
from .source import relative_path

DEFAULT_FILE_TYPES = ".json, .zip, .txt, .tsv, .gz, .csv, .h5, .npy"
DOMAINS = ("CV", "NLP", "RL", "MM", "AUD", "TAB")
RETENTION_POLICIES = ("keep_forever", "days_14", "days_30", "months_3", "months_6", "months_12")
DEFAULT_META_NAMES = ("method_name", "method_description", "project_url", "publication_url")
PRIZE_AMOUNT = re.compile(r"^\d+(\.\d{1,2})?[A-Z]{3}$")

# Keys EvalAI accepts and documents, but that only steer its AWS deployment (Fargate/EC2/EKS/SQS).
# Assay keeps them verbatim (so a re-export round-trips) and says they have no effect here.
AWS_INFRA_KEYS = (
    "worker_image_url", "worker_python_version", "worker_cpu_cores", "worker_memory",
    "ephemeral_storage", "uses_ec2_worker", "ec2_storage", "sqs_retention_period", "use_fifo_sqs",
    "cpu_only_jobs", "job_cpu_cores", "job_memory", "worker_instance_type", "worker_ami_type",
    "worker_disk_size", "max_worker_instance", "min_worker_instance", "desired_worker_instance",
    "vpc_cidr", "subnet_1_cidr", "subnet_2_cidr",
)  # fmt: skip

# worker_python_version picks EvalAI's worker image, so its package stack: Assay's evaluation environment.
AWS_KEYS_WITH_EFFECT = ("worker_python_version",)

# Phase keys EvalAI's serializer drops without a word; configs copied from its docs carry them.
IGNORED_PHASE_KEYS = ("is_active", "challenge")

_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


def _to_datetime(value: Any) -> Any:
    """Dates as EvalAI takes them: YAML timestamps or 'YYYY-MM-DD HH:MM:SS' text, naive = UTC."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            for fmt in _DATE_FORMATS:
                try:
                    parsed = dt.datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
            else:
                raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD HH:MM:SS (UTC)") from None
    else:
        raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD HH:MM:SS (UTC)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31 23:59:59-05:00 is past the last representable instant
        shown = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else repr(value)
        raise ValueError(f"{shown} is out of range once converted to UTC") from None


def _quoted_int(value: Any) -> Any:
    """EvalAI's serializers take ``visibility: '3'``; so does Assay."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def _none_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


def _text(value: Any) -> Any:
    """EvalAI's serializers turn numbers into text for char fields (a title of ``2024``, say)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


DateTime = Annotated[dt.datetime, BeforeValidator(_to_datetime)]
Text = Annotated[str, BeforeValidator(_text)]
INT32_MAX = 2**31 - 1  # the database columns are 32-bit integers


def _no_bool(value: Any) -> Any:
    """YAML's ``true`` is not an id or a number, though Python says ``True == 1``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a number")
    return value


ConfigId = Annotated[
    int, BeforeValidator(_no_bool), Field(ge=0, le=INT32_MAX, description="Config id; other keys refer to it.")
]
TextList = Annotated[list[Text], BeforeValidator(_none_as_empty_list)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, validate_default=True)


class LabelMeta(_Model):
    sort_ascending: bool | None = Field(
        None, description="Overrides the phase-split's order when this label is the sort key."
    )
    description: Text | None = Field(None, description="Tooltip text for the column.")


class RankAggregation(_Model):
    """An overall column from several labels (and splits): mean or median of per-label ranks, or a weighted sum."""

    method: Literal["mean_rank", "median_rank", "weighted_sum"] = Field(
        description="mean_rank / median_rank of the per-label ranks, or weighted_sum of the values."
    )
    labels: TextList = Field(default_factory=list, description="The labels it draws on; empty means every label.")
    splits: TextList = Field(
        default_factory=list, description="Dataset split codenames of the same phase; empty means the shown split."
    )
    weights: dict[Text, float] | None = Field(None, description="weighted_sum: label → weight (default 1).")
    sort_ascending: bool = Field(False, description="weighted_sum: true ranks lower sums first.")
    title: Text = Field("Overall", min_length=1, max_length=100, description="The column's title.")
    sort_by_default: bool = Field(False, description="Sort the leaderboard by this column unless a label is asked.")


class LeaderboardSchema(_Model):
    labels: list[Text] = Field(min_length=1, description="Metric names: the leaderboard's columns, in order.")
    default_order_by: Text = Field(description="The label the leaderboard is sorted by; one of `labels`.")
    metadata: dict[Text, LabelMeta] | None = Field(None, description="Per-label options.")
    rank_aggregation: RankAggregation | None = Field(
        None, description="Assay: an overall rank from several labels and splits, shown as its own column."
    )

    @model_validator(mode="after")
    def _aggregation_labels(self) -> LeaderboardSchema:
        agg = self.rank_aggregation
        if agg is None:
            return self
        unknown = [label for label in [*agg.labels, *(agg.weights or {})] if label not in self.labels]
        if unknown:
            raise ValueError(f"rank_aggregation names {unknown}, which are not labels {self.labels}")
        if agg.weights and agg.method != "weighted_sum":
            raise ValueError("rank_aggregation: weights apply to method weighted_sum only")
        return self


class Leaderboard(_Model):
    id: ConfigId
    schema_: LeaderboardSchema = Field(alias="schema", description="Labels, sort key and label metadata.")

    model_config = ConfigDict(**_Model.model_config, populate_by_name=True)


class MetaAttribute(_Model):
    name: Text
    description: Annotated[Text, BeforeValidator(lambda v: "" if v is None else v)] = Field(
        "", description="Help text shown beside the field (EvalAI runs configs that leave it empty)."
    )
    type: Literal["text", "radio", "checkbox", "boolean"]
    options: TextList = Field(default_factory=list, description="Choices; required for radio and checkbox.")
    required: bool = False


class DefaultMetaAttribute(_Model):
    name: Text = Field(description="One of method_name, method_description, project_url, publication_url.")
    is_visible: bool = True


class EvaluationLimitsConfig(_Model):
    """Per-evaluation limits; unset ones come from the server's settings."""

    memory_mb: int | None = Field(None, ge=64, le=1024 * 1024, description="Memory (address space) in MiB.")
    cpu_seconds: int | None = Field(None, ge=1, le=INT32_MAX, description="CPU time in seconds.")
    max_processes: int | None = Field(None, ge=1, le=4096, description="Processes and threads at once.")
    max_output_kb: int | None = Field(None, ge=1, le=1024 * 1024, description="Kept stdout and stderr, each, in KiB.")


class ChunkingConfig(_Model):
    """Chunked parallel evaluation of one submission (the script defines evaluate_chunk and merge_chunks)."""

    format: Literal["auto", "json", "jsonl", "csv"] = Field("auto", description="How to split the submission file.")
    chunk_count: int | None = Field(None, ge=1, le=1024, description="Chunks per submission (default: 4 per core).")
    min_bytes: int = Field(1024 * 1024, ge=0, le=2**62, description="Smaller submissions are evaluated whole.")


AUDIT_TASKS = ("binary", "ordinal", "multiclass", "regression")
Grade = Annotated[int, BeforeValidator(_no_bool)] | Text


class AuditBootstrap(_Model):
    """The confidence intervals' bootstrap: the same seed gives the same intervals."""

    resamples: int = Field(1000, ge=0, le=10_000, description="Resamples per figure; 0: no intervals.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="NumPy default_rng seed.")
    level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the percentile intervals.")


class AuditSettings(_Model):
    """How the per-case rows of a phase's submissions are audited (``assay.audit.summary``).

    Task-specific keys (threshold, grades, referable_from) are checked in :mod:`assay.bundle.rules`.
    """

    task: Literal[AUDIT_TASKS]  # type: ignore[valid-type]
    prediction: Text | None = Field(
        None, min_length=1, max_length=100, description='Row key of the prediction (binary: "probability").'
    )
    threshold: Annotated[float, BeforeValidator(_no_bool)] | None = Field(
        None, gt=0, lt=1, description="binary: the declared operating threshold."
    )
    grades: list[Grade] | None = Field(
        None, max_length=1000, description="ordinal: the grades in order; multiclass: the labels."
    )
    referable_from: Grade | None = Field(None, description="ordinal: referable at this grade and above.")
    subgroups: TextList = Field(default_factory=list, max_length=64, description="Columns of case_metadata_file.")
    min_group_size: int = Field(30, ge=1, le=INT32_MAX, description="Smaller subgroups are suppressed.")
    bootstrap: AuditBootstrap = Field(default_factory=AuditBootstrap)
    intervals: dict[Text, Text] = Field(
        default_factory=dict, description="Leaderboard label -> audit figure whose interval is shown beside it."
    )


#: A data package's name as the server gives it (lower-case letters, digits and inner hyphens, at most 100).
PACKAGE_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
#: The role each key of ``data_package`` asks of the file it names, and the phase key it replaces.
PACKAGE_KEYS: dict[str, tuple[str, str]] = {
    "annotations": ("labels", "test_annotation_file"),
    "test_inputs": ("inputs", "test_inputs"),
    "case_metadata": ("metadata", "case_metadata_file"),
}


def _package_path(value: Any) -> Any:
    """A file's path inside the package, by the rule for any path the config writes (:func:`.source.relative_path`)."""
    if value is None or not isinstance(value, str):
        return value
    hint = "name the file as the package does, e.g. labels/test.json"
    return relative_path(value, inside="package", absolute_hint=hint)


PackagePath = Annotated[Text, BeforeValidator(_package_path), Field(max_length=300)]


class DataPackageRef(_Model):
    """Assay: a phase's annotations, test inputs and case metadata taken from a published data package version."""

    name: Text = Field(
        min_length=1,
        max_length=100,
        description="The package's name (its slug: lower-case letters, digits and inner hyphens).",
        json_schema_extra={"pattern": PACKAGE_SLUG.pattern},
    )
    version: Annotated[int, BeforeValidator(_no_bool)] = Field(
        ge=1,
        le=INT32_MAX,
        description="The published version the phase pins (required: a new version never "
        "changes the phase until the bundle names it).",
    )
    annotations: PackagePath | None = Field(
        None, description="A file of role labels in that version; replaces the phase's test_annotation_file."
    )
    test_inputs: PackagePath | None = Field(
        None, description="A file of role inputs in that version; replaces the phase's test_inputs."
    )
    case_metadata: PackagePath | None = Field(
        None, description="A CSV of role metadata in that version; replaces the phase's case_metadata_file."
    )

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not PACKAGE_SLUG.match(value):
            raise ValueError(f"{value!r} is not a package name: lower-case letters, digits and inner hyphens")
        return value

    def files(self) -> dict[str, str]:
        """Key (annotations, test_inputs, case_metadata) -> the path it names, for the keys set."""
        return {key: getattr(self, key) for key in PACKAGE_KEYS if getattr(self, key)}


class Phase(_Model):
    id: ConfigId
    name: Text = Field(max_length=100)
    description: Text = Field(description="Path to an .html file, stored inline.")
    codename: Text = Field(max_length=100, description="Passed to evaluate() as phase_codename.")
    start_date: DateTime
    end_date: DateTime
    test_annotation_file: Text | None = Field(
        None, description="Path to the phase's annotation file (not needed for remote evaluation)."
    )
    leaderboard_public: bool = False
    is_public: bool = False
    is_submission_public: bool = False
    max_submissions_per_day: int = Field(100000, ge=0, le=INT32_MAX)
    max_submissions_per_month: int | None = Field(None, ge=0, le=INT32_MAX, description="Defaults to max_submissions.")
    max_submissions: int = Field(100000, ge=0, le=INT32_MAX)
    max_concurrent_submissions_allowed: int = Field(3, ge=0, le=INT32_MAX)
    allowed_email_ids: TextList = Field(default_factory=list)
    allowed_submission_file_types: Text = Field(DEFAULT_FILE_TYPES, max_length=500)
    is_restricted_to_select_one_submission: bool = False
    is_partial_submission_evaluation_enabled: bool = False
    submission_meta_attributes: list[MetaAttribute] | None = None
    default_submission_meta_attributes: list[DefaultMetaAttribute] | None = None
    disable_logs: bool = False
    environment_image: Text | None = Field(None, max_length=500)
    submission_artifact_retention_policy: Literal[RETENTION_POLICIES] | None = None  # type: ignore[valid-type]
    is_submission_paused: bool = False
    annotations_uploaded_using_cli: bool = False
    # Assay additions
    count_failed_submissions: bool = Field(
        False, description="Assay: failed submissions count against the limits (EvalAI never counts them)."
    )
    chunked_evaluation: ChunkingConfig | None = Field(
        None, description="Assay: split large submissions into chunks evaluated in parallel, then merged."
    )
    test_inputs: Text | None = Field(
        None,
        description="Assay: the test inputs (a file or a .zip, never the labels) that a static-dataset container "
        "submission reads read-only at /input.",
    )
    case_metadata_file: Text | None = Field(
        None,
        description="Assay: a CSV in the bundle (header row, first column case_id) of the hidden attributes of each "
        "test case (subgroups); joined with the per-case rows on the server, never sent to workers.",
    )
    data_package: DataPackageRef | None = Field(
        None,
        description="Assay: take the annotations (and test inputs, case metadata) from a published data package "
        "version on the server instead of files in the bundle; checked against the package when imported.",
    )
    audit: AuditSettings | None = Field(
        None,
        description="Assay: audit the phase's per-case rows: headline figures with bootstrap intervals, subgroups, "
        "calibration; intervals shown beside leaderboard scores.",
    )

    @field_validator("allowed_submission_file_types", mode="before")
    @classmethod
    def _file_types(cls, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value

    @property
    def file_types(self) -> list[str]:
        """Allowed extensions, normalised to lower case with a leading dot."""
        out = []
        for part in re.split(r"[,\s]+", self.allowed_submission_file_types):
            if part:
                out.append(("." + part.lstrip(".")).lower())
        return out

    @property
    def annotations_from_package(self) -> bool:
        return self.data_package is not None and self.data_package.annotations is not None

    @property
    def case_metadata_from_package(self) -> bool:
        return self.data_package is not None and self.data_package.case_metadata is not None

    @property
    def effective_max_per_month(self) -> int:
        return self.max_submissions if self.max_submissions_per_month is None else self.max_submissions_per_month

    @property
    def effective_max_concurrent(self) -> int:
        """EvalAI clamps the concurrency cap to the daily limit when it saves a phase."""
        return min(self.max_concurrent_submissions_allowed, self.max_submissions_per_day)


class DatasetSplit(_Model):
    id: ConfigId
    name: Text = Field(max_length=100)
    codename: Text = Field(max_length=100, description="The key evaluate() returns results under.")


class PhaseSplit(_Model):
    challenge_phase_id: ConfigId
    leaderboard_id: ConfigId
    dataset_split_id: ConfigId
    visibility: Annotated[Literal[1, 2, 3], BeforeValidator(_quoted_int)] = Field(
        3, description="1 host only, 2 submitting team and host, 3 public."
    )
    leaderboard_decimal_precision: int = Field(2, ge=0, le=10)
    is_leaderboard_order_descending: bool = Field(True, description="True: higher is better.")
    show_execution_time: bool = False
    show_leaderboard_by_latest_submission: bool = False
    show_scores_on_leaderboard: bool = True
    is_multi_metric_leaderboard: bool = True
    # Assay additions
    reveal_at: DateTime | None = Field(
        None, description="Assay: from this date on, the leaderboard is public (as visibility 3)."
    )

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.challenge_phase_id, self.leaderboard_id, self.dataset_split_id)


class Prize(_Model):
    rank: int = Field(ge=1, le=INT32_MAX)
    amount: Text = Field(max_length=30, description="Amount and ISO currency, e.g. 100USD or 99.50EUR.")
    description: Text = ""

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: str) -> str:
        if not PRIZE_AMOUNT.match(value):
            raise ValueError(f"{value!r} is not an amount like 100USD or 99.50EUR")
        return value


class Sponsor(_Model):
    name: Text = Field(max_length=200)
    website: Text | None = Field(None, max_length=500)


class ChallengeConfig(_Model):
    """The whole ``challenge_config.yaml``."""

    title: Text = Field(min_length=1, max_length=100)
    short_description: Text | None = None
    description: Text = Field(description="Path to an .html file, stored inline.")
    evaluation_details: Text = Field(description="Path to an .html file, stored inline.")
    terms_and_conditions: Text = Field(description="Path to an .html file, stored inline.")
    submission_guidelines: Text = Field(description="Path to an .html file, stored inline.")
    image: Text | None = Field(None, description="Logo: a .jpg, .jpeg or .png path.")
    evaluation_script: Text | None = Field(None, description="evaluation_script.zip, or a folder.")
    start_date: DateTime
    end_date: DateTime
    published: bool = False
    remote_evaluation: bool = False
    is_docker_based: bool = False
    is_static_dataset_code_upload: bool = False
    tags: TextList = Field(default_factory=list, max_length=4)
    domain: Literal[DOMAINS] | None = None  # type: ignore[valid-type]
    prizes: Annotated[list[Prize], BeforeValidator(_none_as_empty_list)] = Field(default_factory=list)
    sponsors: Annotated[list[Sponsor], BeforeValidator(_none_as_empty_list)] = Field(default_factory=list)
    leaderboard_description: Text | None = None
    submission_time_limit: int = Field(86400, ge=1, le=INT32_MAX)
    is_registration_open: bool = True
    enable_forum: bool = True
    forum_url: Text | None = Field(None, max_length=500)
    anonymous_leaderboard: bool = False
    manual_participant_approval: bool = False
    require_complete_profile: bool = False
    max_team_members: int | None = Field(None, ge=1, le=INT32_MAX)
    allowed_email_domains: TextList = Field(default_factory=list)
    blocked_email_domains: TextList = Field(default_factory=list)
    banned_email_ids: TextList = Field(default_factory=list)
    allow_resuming_submissions: bool = False
    allow_host_cancel_submissions: bool = False
    allow_cancel_running_submissions: bool = False
    allow_participants_resubmissions: bool = False
    max_docker_image_size: int = Field(42949672960, ge=1, le=2**63 - 1)
    cli_version: Text | None = Field(None, max_length=50)
    github_repository: Text | None = Field(None, max_length=200)
    github_branch: Text | None = Field(None, max_length=200)
    challenge_usage_type: Literal["paid", "internal"] = "paid"
    leaderboard: list[Leaderboard] = Field(min_length=1)
    challenge_phases: list[Phase] = Field(min_length=1)
    dataset_splits: Annotated[list[DatasetSplit], BeforeValidator(_none_as_empty_list)] = Field(default_factory=list)
    challenge_phase_splits: Annotated[list[PhaseSplit], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list
    )
    evaluation_limits: EvaluationLimitsConfig | None = Field(
        None, description="Assay: memory, CPU, process and output limits of each evaluation."
    )
    evaluation_environment: Text | None = Field(
        None,
        description="Assay: the Python packages the evaluation script runs with: evalai-py3.9 (EvalAI's current "
        "worker stack), evalai-py3.7 (alias evalai-py3.8; numpy < 1.24) or none (standard library and pip). "
        "Unset: the stack of EvalAI's worker_python_version, else evalai-py3.9.",
    )
    questionnaire: Text | None = Field(
        None,
        max_length=500,
        description="Assay: path to the audit questionnaire (YAML) that teams answer for each audited submission.",
    )
    infrastructure: dict[str, Any] = Field(
        default_factory=dict,
        description="EvalAI's AWS knobs (worker_*, job_*, vpc_*...), kept verbatim; no effect on Assay.",
    )

    @field_validator("evaluation_environment")
    @classmethod
    def _known_environment(cls, value: str | None) -> str | None:
        return environments.canonical(value) if value is not None else None

    def environment(self) -> str:
        """The evaluation environment in effect: the Assay key, else EvalAI's ``worker_python_version``."""
        if self.evaluation_environment:
            return self.evaluation_environment
        by_worker = environments.for_worker_python(self.infrastructure.get("worker_python_version"))
        return by_worker or environments.DEFAULT_ENVIRONMENT

    def retention_policy(self, phase: Phase) -> str:
        if phase.submission_artifact_retention_policy:
            return phase.submission_artifact_retention_policy
        return "days_14" if self.challenge_usage_type == "internal" else "keep_forever"

    def html_fields(self) -> dict[str, str]:
        """Config key → template path for every HTML text stored inline."""
        return {
            "description": self.description,
            "evaluation_details": self.evaluation_details,
            "terms_and_conditions": self.terms_and_conditions,
            "submission_guidelines": self.submission_guidelines,
        }
