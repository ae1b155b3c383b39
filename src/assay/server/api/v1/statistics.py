"""A host's statistics of a challenge (submissions.services.statistics): the figures the host's Statistics tab shows."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.submissions.services.statistics import as_dict, challenge_statistics

from .base import ApiView, hosted_challenge


class DayOut(serializers.Serializer):
    day = serializers.DateField(help_text="UTC.")
    submissions = serializers.IntegerField()
    failed = serializers.IntegerField()


class ReasonOut(serializers.Serializer):
    reason = serializers.CharField(help_text="The failure reason's first 160 characters.")
    count = serializers.IntegerField()


class StatisticsOut(serializers.Serializer):
    submissions = serializers.IntegerField()
    failed = serializers.IntegerField()
    teams_registered = serializers.IntegerField(help_text="Approved registrations.")
    teams_waiting = serializers.IntegerField(help_text="Registrations waiting for the host's approval.")
    participants = serializers.IntegerField(help_text="People in the approved teams.")
    median_evaluation_seconds = serializers.FloatField(allow_null=True, help_text="Of finished evaluations.")
    evaluated = serializers.IntegerField(help_text="Finished evaluations the median is of.")
    per_day = DayOut(many=True)
    failure_reasons = ReasonOut(many=True, help_text="The ten most frequent, most frequent first.")
    other_failures = serializers.IntegerField(help_text="Failures with any other reason.")


class ChallengeStatisticsView(ApiView):
    @extend_schema(responses={200: StatisticsOut}, summary="Submissions per day, teams, failures (hosts)")
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = hosted_challenge(request.user, challenge_id)
        return Response(StatisticsOut(as_dict(challenge_statistics(request.user, challenge))).data)
