"""Assay rows in the JSON shapes EvalAI's serializers produce (the keys its clients read)."""

from __future__ import annotations

from rest_framework.request import Request

from assay.server.challenges.models import Challenge, ChallengePhase, ChallengePhaseSplit
from assay.server.challenges.services.package_pins import labels_stay_with_owner
from assay.server.challenges.services.roles import is_host
from assay.server.submissions.models import Submission
from assay.server.submissions.services.result_access import ResultReader
from assay.server.submissions.services.tokens import queue_name

from ..v1.files import download_url, result_url
from .base import date


def phase_slug(phase: ChallengePhase) -> str:
    return f"{phase.challenge.slug}-{phase.codename}-{phase.pk}"[:200]


def host_team(team) -> dict:
    return {
        "id": team.pk,
        "team_name": team.name,
        "created_by": team.created_by.get_username() if team.created_by_id else None,
        "team_url": team.team_url,
    }


def challenge(request: Request, c: Challenge) -> dict:
    host = is_host(request.user, c)
    data = {
        "id": c.pk,
        "title": c.title,
        "short_description": c.short_description,
        "description": c.description,
        "terms_and_conditions": c.terms_and_conditions,
        "submission_guidelines": c.submission_guidelines,
        "evaluation_details": c.evaluation_details,
        "image": download_url(request, c.image.name) if c.image else None,
        "start_date": date(c.start_date),
        "end_date": date(c.end_date),
        "creator": host_team(c.host_team),
        "domain": c.domain or None,
        "domain_name": c.get_domain_display() if c.domain else None,
        "list_tags": c.tags,
        "has_prize": c.prizes.exists(),
        "has_sponsors": c.sponsors.exists(),
        "published": c.published,
        "submission_time_limit": c.submission_time_limit,
        "is_registration_open": c.is_registration_open,
        "enable_forum": c.enable_forum,
        "forum_url": c.forum_url or None,
        "leaderboard_description": c.leaderboard_description,
        "anonymous_leaderboard": c.anonymous_leaderboard,
        "manual_participant_approval": c.manual_participant_approval,
        "is_static_dataset_code_upload": c.is_static_dataset_code_upload,
        "slug": c.slug,
        "max_docker_image_size": c.max_docker_image_size,
        "cli_version": c.cli_version or None,
        "remote_evaluation": c.remote_evaluation,
        "workers": None,
        "created_at": date(c.created_at),
        "queue": queue_name(c),
        "is_docker_based": c.is_docker_based,
        "approved_by_admin": c.approved_by_admin,
        "is_active": c.is_active,
        "github_repository": c.github_repository,
        "github_branch": c.github_branch,
        "allow_resuming_submissions": c.allow_resuming_submissions,
        "allow_host_cancel_submissions": c.allow_host_cancel_submissions,
        "allow_cancel_running_submissions": c.allow_cancel_running_submissions,
        "allow_participants_resubmissions": c.allow_participants_resubmissions,
        "evaluation_script": None,
    }
    if host:
        data["evaluation_script"] = (
            download_url(request, c.evaluation_script.name, "evaluation_script.zip") if c.evaluation_script else None
        )
        data["banned_email_ids"] = c.banned_email_ids
        data["allowed_email_domains"] = c.allowed_email_domains
        data["blocked_email_domains"] = c.blocked_email_domains
    return data


def phase(request: Request, p: ChallengePhase) -> dict:
    host = is_host(request.user, p.challenge)
    data = {
        "id": p.pk,
        "name": p.name,
        "description": p.description,
        "leaderboard_public": p.leaderboard_public,
        "start_date": date(p.start_date),
        "end_date": date(p.end_date),
        "challenge": p.challenge_id,
        "is_public": p.is_public,
        "is_active": p.is_active,
        "codename": p.codename,
        "slug": phase_slug(p),
        "max_submissions_per_day": p.max_submissions_per_day,
        "max_submissions_per_month": p.max_submissions_per_month,
        "max_submissions": p.max_submissions,
        "max_concurrent_submissions_allowed": p.max_concurrent_submissions_allowed,
        "is_restricted_to_select_one_submission": p.is_restricted_to_select_one_submission,
        "is_partial_submission_evaluation_enabled": p.is_partial_submission_evaluation_enabled,
        "is_submission_public": p.is_submission_public,
        "allowed_submission_file_types": p.allowed_submission_file_types,
        "submission_meta_attributes": p.submission_meta_attributes,
        "default_submission_meta_attributes": p.default_submission_meta_attributes,
        "disable_logs": p.disable_logs,
        "test_annotation": None,
    }
    if host:
        data["allowed_email_ids"] = p.allowed_email_ids
        if p.test_annotation and not labels_stay_with_owner(p):  # another team's package labels: never
            data["test_annotation"] = download_url(request, p.test_annotation.name)
    return data


def phase_split(ps: ChallengePhaseSplit) -> dict:
    return {
        "id": ps.pk,
        "challenge_phase": ps.phase_id,
        "challenge_phase_name": ps.phase.name,
        "dataset_split": ps.dataset_split_id,
        "dataset_split_name": ps.dataset_split.name,
        "visibility": ps.visibility,
        "show_leaderboard_by_latest_submission": ps.show_leaderboard_by_latest_submission,
        "show_execution_time": ps.show_execution_time,
        "leaderboard_decimal_precision": ps.leaderboard_decimal_precision,
        "is_leaderboard_order_descending": ps.is_leaderboard_order_descending,
    }


def submission(request: Request, s: Submission, reader: ResultReader | None = None) -> dict:
    """EvalAI's submission shape as ``request.user`` may see it (result document cut, metadata for hosts)."""
    reader = reader or ResultReader(request.user)
    logs = reader.may_read_logs(s)

    def url(field, name=None):
        return download_url(request, field.name, name) if field else None

    return {
        "id": s.pk,
        "participant_team": s.participant_team_id,
        "participant_team_name": s.participant_team.name,
        "execution_time": s.execution_time,
        "challenge_phase": s.phase_id,
        "created_by": s.created_by.get_username(),
        "status": s.status,
        "input_file": url(s.input_file, s.input_file_name),
        "submission_input_file": None,
        "stdout_file": result_url(request, reader, s, "stdout_file") if logs else None,
        "stderr_file": result_url(request, reader, s, "stderr_file") if logs else None,
        "environment_log_file": None,
        "submission_result_file": result_url(request, reader, s),
        "submission_metadata_file": url(s.submission_metadata_file) if reader.may_read_metadata(s) else None,
        "started_at": date(s.started_at),
        "completed_at": date(s.completed_at),
        "submitted_at": date(s.submitted_at),
        "rerun_resumed_at": date(s.rerun_resumed_at),
        "method_name": s.method_name,
        "method_description": s.method_description,
        "project_url": s.project_url,
        "publication_url": s.publication_url,
        "is_public": s.is_public,
        "is_flagged": s.is_flagged,
        "ignore_submission": s.ignore_submission,
        "when_made_public": date(s.when_made_public),
        "is_baseline": s.is_baseline,
        "job_name": [s.job_name] if s.job_name else [],
        "submission_metadata": s.submission_metadata,
        "is_verified_by_host": s.is_verified_by_host,
        "submission_number": s.submission_number,
        "failure_reason": s.failure_reason,
    }


def participant_team(team) -> dict:
    members = team.memberships.select_related("user").order_by("pk")
    return {
        "id": team.pk,
        "team_name": team.name,
        "created_by": team.created_by.get_username() if team.created_by_id else None,
        "team_url": team.team_url,
        "members": [
            {"member_name": m.user.get_username(), "status": "Self" if m.user_id == team.created_by_id else "Accepted",
             "member_id": m.user_id}
            for m in members
        ],
    }  # fmt: skip


def host_team_full(team) -> dict:
    members = team.memberships.select_related("user").order_by("pk")
    return {
        **host_team(team),
        "members": [
            {"id": m.pk, "user": m.user.get_username(), "status": "Self" if m.user_id == team.created_by_id else
             "Accepted", "permissions": m.permission, "team_name": team.pk}
            for m in members
        ],
    }  # fmt: skip
