"""Who may see and act on a model: the one rule every face (web, /api/v1, CLI through the API) asks.

A model is its team's (active members) until they publish it; a published model's card and versions'
digests are readable by every signed-in user. Staff read every model. Only the team's members change a
model, add versions, publish it or submit it. Which *results* of a model a reader sees is not decided
here: each submission made from it is cut by the submissions' own :class:`ResultReader` (page.py).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from assay.server.refusals import Refusal
from assay.server.teams import services as teams
from assay.server.teams.models import active_membership

from ..models import Model


class ModelRefusal(Refusal):
    """A request about a model the rules refuse."""


def _signed_in(user) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def is_member(user, model: Model) -> bool:
    return teams.is_member(user, model.team)


def can_view(user, model: Model) -> bool:
    if not _signed_in(user):
        return False
    return model.is_published or bool(user.is_staff) or is_member(user, model)


def visible_models(user) -> QuerySet[Model]:
    """Every model ``user`` may read: published ones and their teams' own (none for anonymous users)."""
    qs = Model.objects.select_related("team")
    if not _signed_in(user):
        return qs.none()
    if user.is_staff:
        return qs
    mine = active_membership("team__memberships__", user=user)
    return qs.filter(Q(published_at__isnull=False) | mine).distinct()


def readable_model(user, model_id: int) -> Model:
    """The model if ``user`` may read it; a private one is 'not found' to others (no probing)."""
    model = Model.objects.select_related("team").filter(pk=model_id).first()
    if model is None or not can_view(user, model):
        raise ModelRefusal("not_found", "no such model", 404)
    return model


def managed_model(user, model_id: int) -> Model:
    """The model if ``user`` is in its team: a reader who is not is refused (403), others 'not found'."""
    model = readable_model(user, model_id)
    if not is_member(user, model):
        raise ModelRefusal("forbidden", "only the model's team may do this", 403)
    return model
