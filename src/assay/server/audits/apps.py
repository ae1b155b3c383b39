from django.apps import AppConfig


class AuditsConfig(AppConfig):
    """Health-AI audits: per-phase summaries of per-case results, questionnaires, reviews, release, trail."""

    name = "assay.server.audits"
    label = "audits"
