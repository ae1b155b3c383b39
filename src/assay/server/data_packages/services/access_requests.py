"""Access requests to an on-request package: asked by a user, decided (and revoked) by the data owner.

One request per user and package, whose status moves: pending → approved | denied; approved → revoked
(:func:`revoke`, or :func:`decide` refusing it);
denied or revoked → pending again when the user asks again (with a new reason). An approval opens the
package's inputs, every version's; never its labels or metadata.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..models import AccessRequest, DataPackage
from .access import DataPackageRefusal, is_owner, require_owner, signed_in
from .card import clean_text

A = DataPackage.Access
S = AccessRequest.Status
REASON_MAX = 5_000
NOTE_MAX = 5_000


def request_access(user, package: DataPackage, reason: str) -> AccessRequest:
    """Ask the data owner for the package's inputs (``package`` is one the user may read)."""
    if not signed_in(user):
        raise DataPackageRefusal("not_authenticated", "sign in to request access", 401)
    if is_owner(user, package):
        raise DataPackageRefusal("invalid", "your host team owns this package: you have access already", 400)
    if package.access == A.PUBLIC:
        raise DataPackageRefusal("invalid", "this package is public: download its inputs without asking", 400)
    if package.access != A.ON_REQUEST:
        raise DataPackageRefusal("forbidden", "only the package's host team reads it; it takes no requests", 403)
    reason = clean_text("reason", reason, REASON_MAX)
    if not reason:
        raise DataPackageRefusal("invalid", "say what you will use the data for (the reason)", 400)
    with transaction.atomic():
        existing = AccessRequest.objects.select_for_update().filter(package=package, user=user).first()
        if existing is None:
            try:
                with transaction.atomic():
                    return AccessRequest.objects.create(package=package, user=user, reason=reason)
            except IntegrityError:
                raise DataPackageRefusal("conflict", "you have asked already", 409) from None
        if existing.status in (S.PENDING, S.APPROVED):
            raise DataPackageRefusal("conflict", f"you have asked already; your request is {existing.status}", 409)
        existing.reason, existing.status = reason, S.PENDING  # denied or revoked: ask again
        existing.decided_by, existing.decided_at, existing.decision_note = None, None, ""
        existing.save(update_fields=["reason", "status", "decided_by", "decided_at", "decision_note"])
        return existing


def decide(user, package: DataPackage, request_id: int, approve: bool, note: str = "") -> AccessRequest:
    """Approve or refuse a request (the owners): approving works from pending, denied or revoked; refusing a
    pending request denies it, refusing an approved one revokes it (as :func:`revoke`)."""
    require_owner(user, package, "decide access requests")
    note = clean_text("note", note, NOTE_MAX)
    with transaction.atomic():
        req = _request(package, request_id)
        if approve and req.status == S.APPROVED:
            raise DataPackageRefusal("conflict", "this request is approved already", 409)
        if not approve and req.status not in (S.PENDING, S.APPROVED):
            raise DataPackageRefusal("conflict", f"this request is {req.status} already", 409)
        if approve:
            return _set(req, user, S.APPROVED, note)
        return _set(req, user, S.DENIED if req.status == S.PENDING else S.REVOKED, note)


def revoke(user, package: DataPackage, request_id: int, note: str = "") -> AccessRequest:
    """Withdraw an approval (the owners): the user's downloads stop; those already made stay in the log."""
    require_owner(user, package, "revoke access")
    note = clean_text("note", note, NOTE_MAX)
    with transaction.atomic():
        req = _request(package, request_id)
        if req.status != S.APPROVED:
            why = f"only an approved request can be revoked; this one is {req.status}"
            raise DataPackageRefusal("conflict", why, 409)
        return _set(req, user, S.REVOKED, note)


def requests_seen(user, package: DataPackage) -> QuerySet[AccessRequest]:
    """The owners: every request of the package; anyone else: their own (none for anonymous visitors)."""
    qs = AccessRequest.objects.filter(package=package).select_related("user", "decided_by")
    if is_owner(user, package):
        return qs
    if not signed_in(user):
        return qs.none()
    return qs.filter(user=user)


def _request(package: DataPackage, request_id: int) -> AccessRequest:
    req = AccessRequest.objects.select_for_update().filter(package=package, pk=request_id).first()
    if req is None:
        raise DataPackageRefusal("not_found", "no such access request for this package", 404)
    return req


def _set(req: AccessRequest, user, status: str, note: str) -> AccessRequest:
    req.status, req.decided_by, req.decided_at, req.decision_note = status, user, timezone.now(), note
    req.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return req
