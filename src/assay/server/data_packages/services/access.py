"""Who may see a data package and read its files: the one rule every face (web, /api/v1, CLI) asks.

A package belongs to its host team (every member is an owner). Its card is readable by:

=============  ===========================================================================
policy         who reads the card and the list of its input files
=============  ===========================================================================
public         everyone, anonymous visitors included
on_request     every signed-in user (so they can ask for access)
hosts_only     the owners, and staff (staff read cards, never more than a reader)
=============  ===========================================================================

Reading the *inputs* is :func:`has_access`: public → anyone; on_request → owners and users whose request
was approved; hosts_only → owners. Labels and hidden case metadata are the owners' alone, whatever the
policy: a participant never downloads them, and never sees them listed (they answer as missing, 404).
Staff are not owners. Workers get labels through the phase that pins a version, not through this rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from assay.server.refusals import Refusal

from ..models import AccessRequest, DataPackage, DataPackageFile

A = DataPackage.Access
R = DataPackageFile.Role


class DataPackageRefusal(Refusal):
    """A request about a data package the rules refuse."""


def signed_in(user) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def is_owner(user, package: DataPackage) -> bool:
    """A member of the owning host team (staff are not owners by being staff)."""
    if not signed_in(user):
        return False
    return package.host_team.memberships.filter(user=user).exists()


def require_host(user) -> None:
    """Only members of a host team create packages (asked before a body is read: a stranger learns nothing)."""
    if not signed_in(user):
        raise DataPackageRefusal("not_authenticated", "sign in to create a data package", 401)
    if not user.host_memberships.exists():
        raise DataPackageRefusal("forbidden", "only members of a host team create data packages", 403)


def visible_packages(user) -> QuerySet[DataPackage]:
    """Every package whose card ``user`` may read (see the module's table)."""
    qs = DataPackage.objects.select_related("host_team")
    if not signed_in(user):
        return qs.filter(access=A.PUBLIC)
    if user.is_staff:
        return qs
    return qs.filter(Q(access__in=[A.PUBLIC, A.ON_REQUEST]) | Q(host_team__memberships__user=user)).distinct()


def can_view(user, package: DataPackage) -> bool:
    if package.access == A.PUBLIC:
        return True
    if not signed_in(user):
        return False
    return package.access == A.ON_REQUEST or bool(user.is_staff) or is_owner(user, package)


def readable_package(user, slug: str) -> DataPackage:
    """The package if ``user`` may read its card; one they may not is 'not found' (no probing)."""
    package = DataPackage.objects.select_related("host_team").filter(slug=slug).first() if slug else None
    if package is None or not can_view(user, package):
        raise DataPackageRefusal("not_found", "no such data package", 404)
    return package


def managed_package(user, slug: str) -> DataPackage:
    """The package if ``user`` owns it: a reader who does not is refused (403), others 'not found'."""
    package = readable_package(user, slug)
    if not is_owner(user, package):
        raise DataPackageRefusal("forbidden", "only the package's host team may do this", 403)
    return package


def require_owner(user, package: DataPackage, doing: str) -> None:
    if not is_owner(user, package):
        raise DataPackageRefusal("forbidden", f"only the package's host team may {doing}", 403)


def _admits(package: DataPackage, *, owner: bool, approved) -> bool:
    """The inputs rule itself; ``approved`` is asked only when it matters (a callable, or a known answer)."""
    if package.access == A.PUBLIC or owner:
        return True
    return package.access == A.ON_REQUEST and bool(approved() if callable(approved) else approved)


def has_access(user, package: DataPackage) -> bool:
    """Whether ``user`` may read the package's inputs (every version's)."""
    if not signed_in(user):
        return package.access == A.PUBLIC
    approved = AccessRequest.objects.filter(package=package, user=user, status=AccessRequest.Status.APPROVED).exists
    return _admits(package, owner=is_owner(user, package), approved=approved)


@dataclass(frozen=True)
class Reader:
    """What a list of packages shows its reader, fetched once (two queries) rather than per package."""

    host_team_ids: frozenset[int]
    requests: dict[int, str]  # package id → the reader's request status

    def is_owner(self, package: DataPackage) -> bool:
        return package.host_team_id in self.host_team_ids

    def has_access(self, package: DataPackage) -> bool:
        approved = self.requests.get(package.pk) == AccessRequest.Status.APPROVED
        return _admits(package, owner=self.is_owner(package), approved=approved)

    def request_status(self, package: DataPackage) -> str | None:
        return self.requests.get(package.pk)


def reader(user) -> Reader:
    """The reader's host teams and requests, for :class:`Reader` (a list's per-package flags)."""
    if not signed_in(user):
        return Reader(frozenset(), {})
    teams = frozenset(user.host_memberships.values_list("team_id", flat=True))
    return Reader(teams, dict(AccessRequest.objects.filter(user=user).values_list("package_id", "status")))


def may_download(user, file: DataPackageFile) -> bool:
    """Inputs: :func:`has_access`; labels and metadata: the owners only — never participants."""
    package = file.version.package
    if file.role == R.INPUTS:
        return has_access(user, package)
    return is_owner(user, package)


def readable_file(user, package: DataPackage, number: int, path: str) -> DataPackageFile:
    """The file ``path`` of version ``number`` if ``user`` may download it.

    ``package`` is one :func:`readable_package` returned. A missing version or file, and a label or
    metadata file for anyone but the owners, answer 404 (they are not listed to them either); an input
    file the reader has no access to answers 403, saying how to get it.
    """
    file = (
        DataPackageFile.objects.select_related("version__package__host_team")
        .filter(version__package=package, version__number=number, path=path)
        .first()
    )
    if file is None or (file.role != R.INPUTS and not is_owner(user, package)):
        raise DataPackageRefusal("not_found", "no such file in this version of the package", 404)
    if not may_download(user, file):
        if package.access == A.ON_REQUEST and signed_in(user):
            why = "request access to this package first (or wait for the data owner's approval)"
        elif package.access == A.ON_REQUEST:
            why = "sign in and request access to this package first"
        else:
            why = "only the package's host team may read its files"
        raise DataPackageRefusal("forbidden", why, 403)
    return file
