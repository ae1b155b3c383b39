"""Importing a validated bundle into the database, and updating a challenge from a changed bundle.

All or nothing: every refusal is decided before anything is written; rows are written in one
transaction; files go to storage under content-addressed names, and the ones this import created
are removed again if the transaction fails. Rows are matched by the bundle's config ids, so a
re-import updates in place. Adding phases, splits, leaderboards and phase-splits is allowed
(EvalAI forbids it); removing or renaming what submissions already depend on is refused.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DataError, IntegrityError, transaction

from assay.bundle import Bundle, Problem
from assay.bundle.model import ChallengeConfig, PhaseSplit
from assay.bundle.source import CONFIG_NAMES
from assay.server.accounts.services import unverified_email_refusal
from assay.server.storage import ContentWriter
from assay.server.teams.models import HostTeam

from .. import signals
from ..models import (
    Challenge,
    ChallengePhase,
    ChallengePhaseSplit,
    ChallengePrize,
    ChallengeSponsor,
    DatasetSplit,
    Leaderboard,
)
from .import_refusal import ImportRefused  # callers import it from here
from .package_pins import PHASE_FIELDS, Pin, package_file_of, resolve_pins


@dataclass
class ImportReport:
    challenge: Challenge
    created: bool
    changes: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


# Config keys copied one to one onto the Challenge row.
_CHALLENGE_FIELDS = (
    "title", "start_date", "end_date", "published", "remote_evaluation", "is_docker_based",
    "is_static_dataset_code_upload", "tags", "submission_time_limit", "is_registration_open",
    "enable_forum", "anonymous_leaderboard", "manual_participant_approval", "require_complete_profile",
    "max_team_members", "allowed_email_domains", "blocked_email_domains", "banned_email_ids",
    "allow_resuming_submissions", "allow_host_cancel_submissions", "allow_cancel_running_submissions",
    "allow_participants_resubmissions", "max_docker_image_size", "challenge_usage_type", "infrastructure",
)  # fmt: skip
_TEXT_FIELDS = ("short_description", "leaderboard_description", "forum_url", "cli_version", "domain",
                "github_repository", "github_branch")  # fmt: skip
_PHASE_FIELDS = (
    "name", "codename", "start_date", "end_date", "leaderboard_public", "is_public", "is_submission_public",
    "max_submissions_per_day", "max_submissions", "allowed_email_ids",
    "is_restricted_to_select_one_submission",
    "is_partial_submission_evaluation_enabled", "disable_logs", "is_submission_paused",
    "annotations_uploaded_using_cli", "count_failed_submissions", "allowed_submission_file_types",
)  # fmt: skip
_PHASE_SPLIT_FIELDS = (
    "visibility", "leaderboard_decimal_precision", "is_leaderboard_order_descending", "show_execution_time",
    "show_leaderboard_by_latest_submission", "show_scores_on_leaderboard", "is_multi_metric_leaderboard",
    "reveal_at",
)  # fmt: skip


def import_bundle(
    bundle: Bundle,
    *,
    host_team: HostTeam,
    user=None,
    challenge: Challenge | None = None,
    config_text: str = "",
    bundle_sha256: str = "",
    operator: bool = False,
) -> ImportReport:
    """Create a challenge from ``bundle`` under ``host_team``, or update ``challenge`` (or the
    host team's challenge synced from the same ``github_repository``) in place.

    A ``user`` creating a challenge needs a verified e-mail address, unless the server's operator
    imports for them (``operator``); ``user=None`` is the operator's own import."""
    if bundle.config_only:
        raise ImportRefused(
            "config_only",
            "a lone challenge_config.yaml cannot be imported: upload the whole bundle (zip or folder)",
        )
    config = bundle.config
    if challenge is None and config.github_repository:
        challenge = Challenge.objects.filter(host_team=host_team, github_repository=config.github_repository).first()
    if challenge is None and user is not None and not operator:
        if reason := unverified_email_refusal(user, "create a challenge"):
            raise ImportRefused("email_unverified", reason, 403)
    if challenge is not None and challenge.host_team_id != host_team.pk:
        raise ImportRefused("not_your_challenge", f"challenge {challenge.pk} belongs to another host team")
    changes: list[str] = []
    if challenge is not None:
        _check_update(challenge, config, changes)
    pins = resolve_pins(config, host_team)  # data_package keys: the versions and files exist, may be pinned

    writer = ContentWriter()
    try:
        with transaction.atomic():
            created = challenge is None
            challenge = _write_challenge(bundle, challenge, host_team, user, writer, config_text, bundle_sha256)
            _write_children(bundle, challenge, writer, changes, pins)
            # what higher apps keep from a bundle (the questionnaire); their refusal undoes this import
            signals.bundle_imported.send(Challenge, challenge=challenge, config=config, bundle=bundle, changes=changes)
    except (IntegrityError, DataError) as exc:
        writer.rollback()
        raise ImportRefused("conflict", f"the bundle conflicts with existing rows: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # a zip entry whose header was fine but whose data is damaged only fails when streamed
        writer.rollback()
        raise ImportRefused("unreadable_file", f"a file of the bundle cannot be read: {exc}") from None
    except BaseException:
        writer.rollback()
        raise
    if created:
        changes.insert(0, f"created challenge {challenge.title!r} (id {challenge.pk})")
    return ImportReport(challenge=challenge, created=created, changes=changes, warnings=list(bundle.warnings))


# --- refusals, decided before any write ------------------------------------------------------------


def _check_update(challenge: Challenge, config: ChallengeConfig, changes: list[str]) -> None:
    new_phases = {p.id: p for p in config.challenge_phases}
    new_splits = {s.id: s for s in config.dataset_splits}
    new_boards = {b.id: b for b in config.leaderboard}
    new_pairs = {ps.key for ps in config.challenge_phase_splits}

    for phase in challenge.phases.all():
        has_subs = phase.submissions.exists()  # the reverse of Submission.phase: no import of a higher app
        incoming = new_phases.get(phase.config_id)
        if incoming is None and has_subs:
            raise ImportRefused(
                "phase_has_submissions",
                f"phase {phase.codename!r} (id {phase.config_id}) has submissions and cannot be removed",
            )
        if incoming is not None and incoming.codename != phase.codename and has_subs:
            raise ImportRefused(
                "phase_has_submissions",
                f"phase id {phase.config_id} has submissions: its codename cannot change from"
                f" {phase.codename!r} to {incoming.codename!r} (evaluation scripts receive it)",
            )
    for split in challenge.dataset_splits.all():
        used = split.phase_splits.filter(entries__isnull=False).exists()
        incoming = new_splits.get(split.config_id)
        if incoming is None and used:
            raise ImportRefused(
                "split_has_results",
                f"dataset split {split.codename!r} (id {split.config_id}) has results and cannot be removed",
            )
        if incoming is not None and incoming.codename != split.codename and used:
            raise ImportRefused(
                "split_has_results",
                f"dataset split id {split.config_id} has results: its codename cannot change from"
                f" {split.codename!r} to {incoming.codename!r} (results are keyed by it)",
            )
    for board in challenge.leaderboards.all():
        used = board.phase_splits.filter(entries__isnull=False).exists()
        incoming = new_boards.get(board.config_id)
        if incoming is None and used:
            raise ImportRefused(
                "leaderboard_has_results",
                f"leaderboard id {board.config_id} has results and cannot be removed",
            )
        if incoming is not None and used:
            dropped = [label for label in board.labels if label not in incoming.schema_.labels]
            if dropped:
                raise ImportRefused(
                    "leaderboard_has_results",
                    f"leaderboard id {board.config_id} has results: labels {dropped} cannot be removed",
                )
    for ps in ChallengePhaseSplit.objects.filter(phase__challenge=challenge).select_related(
        "phase", "dataset_split", "leaderboard"
    ):
        key = (ps.phase.config_id, ps.leaderboard.config_id, ps.dataset_split.config_id)
        if key not in new_pairs:
            refuse_removing_phase_split(ps)


def refuse_removing_phase_split(ps: ChallengePhaseSplit) -> None:
    """A phase's leaderboard on a split may go only while it has no results (a bundle or the web editor)."""
    if ps.entries.exists():
        raise ImportRefused(
            "phase_split_has_results",
            f"the leaderboard of phase {ps.phase.codename!r} on split {ps.dataset_split.codename!r} has"
            " results and cannot be removed",
        )


# --- writing -----------------------------------------------------------------------------------------


def _write_challenge(
    bundle: Bundle,
    challenge: Challenge | None,
    host_team: HostTeam,
    user,
    writer: ContentWriter,
    config_text: str,
    bundle_sha256: str,
) -> Challenge:
    config = bundle.config
    challenge = challenge or Challenge(host_team=host_team, creator=user)
    for name in _CHALLENGE_FIELDS:
        setattr(challenge, name, getattr(config, name))
    for name in _TEXT_FIELDS:
        setattr(challenge, name, getattr(config, name) or "")
    for key, text in bundle.html.items():
        setattr(challenge, key, text)
    if bundle.logo:
        rel, data = bundle.logo
        challenge.image.name, _, _ = writer.save("logos", rel, data=data, current=challenge.image.name or "")
    if bundle.evaluation_script:
        name, digest, _ = writer.save(
            "evaluation_scripts",
            "evaluation_script.zip",
            data=bundle.evaluation_script.data,
            current=challenge.evaluation_script.name or "",
        )
        challenge.evaluation_script.name = name
        challenge.evaluation_script_sha256 = digest
    challenge.evaluation_limits = (
        config.evaluation_limits.model_dump(exclude_none=True) if config.evaluation_limits else {}
    )
    challenge.evaluation_environment = config.environment()
    challenge.config_yaml = config_text
    challenge.bundle_sha256 = bundle_sha256
    challenge.save()
    return challenge


def _sync(model, challenge: Challenge, wanted: dict[int, dict], changes: list[str], what: str) -> dict[int, object]:
    """Upsert rows of ``model`` keyed by config id; delete the ones no longer wanted."""
    existing = {row.config_id: row for row in model.objects.filter(challenge=challenge)}
    for config_id, row in existing.items():
        if config_id not in wanted:
            row.delete()
            changes.append(f"removed {what} {config_id}")
    out = {}
    for config_id, values in wanted.items():
        row = existing.get(config_id)
        if row is None:
            row = model(challenge=challenge, config_id=config_id, **values)
            row.save()
            changes.append(f"added {what} {config_id}")
        else:
            changed = [k for k, v in values.items() if getattr(row, k) != v]
            if changed:
                for k in changed:
                    setattr(row, k, values[k])
                row.save()
                changes.append(f"updated {what} {config_id}: {', '.join(changed)}")
        out[config_id] = row
    return out


def _write_children(
    bundle: Bundle, challenge: Challenge, writer: ContentWriter, changes: list[str], pins: dict[int, Pin]
) -> None:
    config = bundle.config
    challenge.prizes.all().delete()
    ChallengePrize.objects.bulk_create(
        ChallengePrize(challenge=challenge, rank=p.rank, amount=p.amount, description=p.description)
        for p in config.prizes
    )
    challenge.sponsors.all().delete()
    ChallengeSponsor.objects.bulk_create(
        ChallengeSponsor(challenge=challenge, name=s.name, website=s.website or "") for s in config.sponsors
    )
    boards = _sync(
        Leaderboard,
        challenge,
        {b.id: {"schema": b.schema_.model_dump(exclude_none=True)} for b in config.leaderboard},
        changes,
        "leaderboard",
    )
    splits = _sync(
        DatasetSplit,
        challenge,
        {s.id: {"name": s.name, "codename": s.codename} for s in config.dataset_splits},
        changes,
        "dataset split",
    )
    current = {
        row[0]: row[1:]
        for row in ChallengePhase.objects.filter(challenge=challenge).values_list(
            "config_id",
            "test_annotation",
            "test_inputs",
            "environment_image_file",
            "case_metadata",
            "data_package_version",
        )
    }
    wanted_phases = {}
    for phase in config.challenge_phases:
        values = {name: getattr(phase, name) for name in _PHASE_FIELDS}
        values.update(
            description=bundle.phase_html.get(phase.id, ""),
            max_submissions_per_month=phase.effective_max_per_month,
            max_concurrent_submissions_allowed=phase.effective_max_concurrent,
            submission_meta_attributes=_dump_list(phase.submission_meta_attributes),
            default_submission_meta_attributes=_dump_list(phase.default_submission_meta_attributes),
            environment_image=phase.environment_image or "",
            chunked_evaluation=phase.chunked_evaluation.model_dump() if phase.chunked_evaluation else None,
            audit=phase.audit.model_dump() if phase.audit else None,
            submission_artifact_retention_policy=config.retention_policy(phase),
        )
        stored = current.get(phase.id) or ("", "", "", "", None)
        for files, folder, field_name, now in (
            (bundle.annotations, "annotations", "test_annotation", stored[0]),
            (bundle.test_inputs, "test_inputs", "test_inputs", stored[1]),
            (bundle.environment_images, "environments", "environment_image_file", stored[2]),
        ):
            if phase.id not in files:
                continue
            rel = files[phase.id]
            name, digest, size = writer.save(
                folder, rel, opener=lambda rel=rel: bundle.open_file(rel), current=now or ""
            )
            prefix = "environment_image" if field_name == "environment_image_file" else field_name
            values.update({field_name: name, f"{prefix}_sha256": digest, f"{prefix}_size": size})
        # the hidden case attributes: stored for the server's joins, never part of a worker's job
        if not phase.case_metadata_file:
            values.update(case_metadata="", case_metadata_sha256="")
        elif phase.id in bundle.case_metadata:  # (a config-only update keeps the stored file)
            rel = bundle.case_metadata[phase.id]
            name, digest, _ = writer.save(
                "case_metadata", rel, opener=lambda rel=rel: bundle.open_file(rel), current=stored[3] or ""
            )
            values.update(case_metadata=name, case_metadata_sha256=digest)
        _pinned_files(phase.id, values, pins.get(phase.id), stored, changes)
        wanted_phases[phase.id] = values
    phases = _sync(ChallengePhase, challenge, wanted_phases, changes, "phase")

    existing = {
        (ps.phase.config_id, ps.leaderboard.config_id, ps.dataset_split.config_id): ps
        for ps in ChallengePhaseSplit.objects.filter(phase__challenge=challenge).select_related(
            "phase", "leaderboard", "dataset_split"
        )
    }
    wanted: dict[tuple[int, int, int], PhaseSplit] = {}
    for ps in config.challenge_phase_splits:
        wanted.setdefault(ps.key, ps)  # a pairing listed twice keeps its first entry (the reader warns)
    for key, row in existing.items():
        if key not in wanted:
            row.delete()
            changes.append(f"removed {_split_name(key)}")
    for key, ps in wanted.items():
        values = {name: getattr(ps, name) for name in _PHASE_SPLIT_FIELDS}
        row = existing.get(key)
        if row is None:
            ChallengePhaseSplit.objects.create(
                phase=phases[ps.challenge_phase_id],
                leaderboard=boards[ps.leaderboard_id],
                dataset_split=splits[ps.dataset_split_id],
                **values,
            )
            changes.append(f"added {_split_name(key)}")
            continue
        changed = [k for k, v in values.items() if getattr(row, k) != v]
        if changed:
            for k in changed:
                setattr(row, k, values[k])
            row.save()
            changes.append(f"updated {_split_name(key)}: {', '.join(changed)}")


def _pinned_files(config_id: int, values: dict, pin: Pin | None, stored: tuple, changes: list[str]) -> None:
    """The phase's files from its data package version (the stored files themselves), and the pin. A file
    the phase took from the version it pinned before, which neither the new pin nor the bundle gives now,
    is forgotten (``stored``: the phase's current annotation, inputs, image, metadata names and pin)."""
    pinned_before = stored[4]
    if pin is not None:
        values.update(pin.phase_values())
        if pin.version.pk != pinned_before:
            changes.append(f"phase {config_id} pins data package {pin.version.package.slug} v{pin.version.number}")
    else:
        values["data_package_version_id"] = None
    if pinned_before is None:
        return
    before = dict(zip(PHASE_FIELDS, (stored[0], stored[1], stored[3]), strict=True))
    for key, (name, digest, size) in PHASE_FIELDS.items():
        if name in values or not before[key] or not package_file_of(pinned_before, before[key]):
            continue  # given now, or never taken from the package
        values.update({name: "", digest: ""} | ({size: 0} if size else {}))


def _split_name(key: tuple[int, int, int]) -> str:
    """A phase-split named by its parts' config ids, as the bundle names them (not a bare tuple)."""
    return f"the leaderboard of phase {key[0]} on dataset split {key[2]} (leaderboard {key[1]})"


def _dump_list(items) -> list | None:
    return None if items is None else [item.model_dump() for item in items]


def config_text_and_digest(path: str) -> tuple[str, str]:
    """The bundle's hash (zip bytes, or every file of a folder in name order) and its config text."""
    p = Path(path)
    digest = hashlib.sha256()
    text = ""
    if p.is_dir():
        for f in sorted(x for x in p.rglob("*") if x.is_file() and ".git" not in x.parts):
            digest.update(f.relative_to(p).as_posix().encode() + b"\0")
            digest.update(f.read_bytes())
        for name in CONFIG_NAMES:
            if (p / name).is_file():
                text = (p / name).read_text(encoding="utf-8-sig")
    else:
        with open(p, "rb") as fh:
            while chunk := fh.read(1024 * 1024):
                digest.update(chunk)
    return text, digest.hexdigest()
