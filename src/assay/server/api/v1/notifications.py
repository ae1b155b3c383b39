"""Notifications: a user's e-mail choice, and a challenge's outbound webhooks with their delivery log (hosts).

The rules are in :mod:`assay.server.notifications.services` (``webhooks``: who manages them, which URLs and
events are allowed); these views read bodies and answer serializers' data."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assay.server.notifications.models import Webhook, WebhookDelivery
from assay.server.notifications.services import preferences, webhooks

from .base import ApiView, Pages, checked_body, visible_challenge


class NotificationSettingsOut(serializers.Serializer):
    submission_emails = serializers.BooleanField(
        help_text="E-mail me when a submission of my team is evaluated or fails."
    )


class NotificationSettingsIn(serializers.Serializer):
    submission_emails = serializers.BooleanField()


EVENT_CHOICES = [(value, label) for value, label in Webhook.Event.choices]


class WebhookIn(serializers.Serializer):
    url = serializers.CharField(max_length=webhooks.MAX_URL, help_text="http(s) URL that receives the POSTs.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES), max_length=10)


class WebhookPatch(serializers.Serializer):
    url = serializers.CharField(max_length=webhooks.MAX_URL, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES), max_length=10, required=False)
    active = serializers.BooleanField(required=False)


class WebhookOut(serializers.ModelSerializer):
    secret = serializers.CharField(help_text="Signs every delivery (README: Notifications and webhooks).")
    events = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "active", "secret", "created_at"]


class DeliveryOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "delivery_id", "event", "attempt", "status_code", "duration_ms", "error", "created_at"]


class NotificationSettingsView(ApiView):
    @extend_schema(responses={200: NotificationSettingsOut}, summary="My notification settings")
    def get(self, request: Request) -> Response:
        return Response(NotificationSettingsOut(preferences.settings_of(request.user)).data)

    @extend_schema(
        request=NotificationSettingsIn,
        responses={200: NotificationSettingsOut},
        summary="Change my notification settings",
    )
    def patch(self, request: Request) -> Response:
        on = checked_body(request, NotificationSettingsIn)["submission_emails"]
        return Response(NotificationSettingsOut(preferences.set_submission_emails(request.user, on)).data)


class ChallengeWebhooksView(ApiView):
    pagination_class = Pages  # what self.paginate answers, for the schema

    @extend_schema(responses={200: WebhookOut(many=True)}, summary="A challenge's webhooks (hosts)")
    def get(self, request: Request, challenge_id: int) -> Response:
        challenge = visible_challenge(request.user, challenge_id)
        return self.paginate(request, webhooks.webhooks_of(request.user, challenge), WebhookOut)

    @extend_schema(request=WebhookIn, responses={201: WebhookOut}, summary="Add a webhook (hosts)")
    def post(self, request: Request, challenge_id: int) -> Response:
        challenge = visible_challenge(request.user, challenge_id)
        webhooks.require_host(request.user, challenge)  # before reading the body: outsiders learn nothing more
        data = checked_body(request, WebhookIn)
        return Response(WebhookOut(webhooks.create(request.user, challenge, data["url"], data["events"])).data, 201)


class ChallengeWebhookView(ApiView):
    def _hook(self, request: Request, challenge_id: int, webhook_id: int) -> Webhook:
        return webhooks.webhook_of(request.user, visible_challenge(request.user, challenge_id), webhook_id)

    @extend_schema(responses={200: WebhookOut}, summary="A webhook (hosts)")
    def get(self, request: Request, challenge_id: int, webhook_id: int) -> Response:
        return Response(WebhookOut(self._hook(request, challenge_id, webhook_id)).data)

    @extend_schema(
        request=WebhookPatch, responses={200: WebhookOut}, summary="Change a webhook's URL, events or pause it"
    )
    def patch(self, request: Request, challenge_id: int, webhook_id: int) -> Response:
        hook = self._hook(request, challenge_id, webhook_id)
        data = checked_body(request, WebhookPatch)
        return Response(WebhookOut(webhooks.update(request.user, hook, **data)).data)

    @extend_schema(request=None, responses={204: None}, summary="Remove a webhook (its pending deliveries stop)")
    def delete(self, request: Request, challenge_id: int, webhook_id: int) -> Response:
        webhooks.delete(request.user, self._hook(request, challenge_id, webhook_id))
        return Response(status=204)


class WebhookDeliveriesView(ApiView):
    pagination_class = Pages

    @extend_schema(responses={200: DeliveryOut(many=True)}, summary="A webhook's delivery log, newest first (hosts)")
    def get(self, request: Request, challenge_id: int, webhook_id: int) -> Response:
        challenge = visible_challenge(request.user, challenge_id)
        return self.paginate(request, webhooks.deliveries_of(request.user, challenge, webhook_id), DeliveryOut)
