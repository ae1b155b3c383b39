"""A phase's files taken from a data package version (bundle key ``data_package``), resolved at import.

The bundle names a package, a published version and paths in it; the import checks them all before
anything is written, and the phase then names the version's stored files themselves (same storage name,
sha256 and size: no copy), so what a worker fetches and what the host published are the same bytes. The
pin is the version: publishing a new one changes no phase until its bundle names it, so results already
on a leaderboard were scored against what the phase still records.

Who may pin: a package of the importing host team, or a public one. Labels and case metadata stay with
the package's host team, so another team's public package may give a phase its annotations only where the
platform evaluates (not a remote challenge, whose workers are its hosts' machines), and never its case
metadata (hosts read per-case rows joined with it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assay.bundle import case_metadata
from assay.bundle.model import PACKAGE_KEYS, ChallengeConfig, Phase
from assay.bundle.rules import subgroup_problems
from assay.server.data_packages.models import DataPackage, DataPackageFile, DataPackageVersion
from assay.server.data_packages.services.access import can_view
from assay.server.teams.models import HostTeam

from ..models import ChallengePhase
from .import_refusal import ImportRefused

A = DataPackage.Access
#: bundle key → the phase's (file field, sha256 field, size field or "")
PHASE_FIELDS: dict[str, tuple[str, str, str]] = {
    "annotations": ("test_annotation", "test_annotation_sha256", "test_annotation_size"),
    "test_inputs": ("test_inputs", "test_inputs_sha256", "test_inputs_size"),
    "case_metadata": ("case_metadata", "case_metadata_sha256", ""),
}


@dataclass
class Pin:
    """One phase's resolved ``data_package``: the version and, per bundle key, the package's file."""

    version: DataPackageVersion
    files: dict[str, DataPackageFile] = field(default_factory=dict)

    def phase_values(self) -> dict[str, object]:
        """The phase's fields that name the pinned files (the stored files themselves), and the pin."""
        values: dict[str, object] = {"data_package_version_id": self.version.pk}
        for key, found in self.files.items():
            name, digest, size = PHASE_FIELDS[key]
            values[name] = found.file.name
            values[digest] = found.sha256
            if size:
                values[size] = found.size
        return values


def resolve_pins(config: ChallengeConfig, host_team: HostTeam) -> dict[int, Pin]:
    """Phase config id → its pin, every one checked; the first problem is refused (nothing is written yet)."""
    pins: dict[int, Pin] = {}
    for phase in config.challenge_phases:
        if phase.data_package is not None:
            pins[phase.id] = _resolve(phase, config, host_team)
    return pins


def _resolve(phase: Phase, config: ChallengeConfig, host_team: HostTeam) -> Pin:
    ref = phase.data_package
    assert ref is not None
    where = f"phase {phase.codename!r}: data_package {ref.name!r}"
    package = DataPackage.objects.filter(slug=ref.name).first()
    owned = package is not None and package.host_team_id == host_team.pk
    if package is None or (not owned and package.access == A.HOSTS_ONLY):  # not even its name is told
        raise ImportRefused("data_package_not_found", f"{where}: there is no such data package", 400)
    if not owned and package.access != A.PUBLIC:
        raise ImportRefused(
            "data_package_not_yours",
            f"{where} belongs to another host team and is not public: only its host team may pin it"
            " (the data owner decides; ask them to make it public or to host the challenge with you)",
            403,
        )
    if not owned and ref.case_metadata:
        raise ImportRefused(
            "data_package_not_yours",
            f"{where}: its case metadata stays with the package's host team (a challenge's hosts read per-case"
            " rows joined with it); only that team may pin data_package.case_metadata",
            403,
        )
    if not owned and ref.annotations and config.remote_evaluation:
        raise ImportRefused(
            "data_package_not_yours",
            f"{where}: its labels stay with the package's host team, and a remote-evaluation challenge's workers"
            " are its hosts' own machines; evaluate on the platform, or ask the data owner to host with you",
            403,
        )
    version = package.versions.filter(number=ref.version).first()
    if version is None:
        latest = package.versions.order_by("-number").values_list("number", flat=True).first()
        published = f"the latest is version {latest}" if latest else "it has no published version"
        raise ImportRefused(
            "data_package_version_not_found", f"{where} has no version {ref.version} ({published})", 400
        )
    pin = Pin(version)
    for key, path in ref.files().items():
        role = PACKAGE_KEYS[key][0]
        found = version.files.filter(path=path).first()
        if found is None:
            listed = ""
            if owned:
                names = list(version.files.filter(role=role).values_list("path", flat=True)[:10])
                listed = f"; its {role} files: {', '.join(names)}" if names else f"; it has no {role} files"
            raise ImportRefused(
                "data_package_file_not_found", f"{where} version {ref.version} has no file {path!r}{listed}", 400
            )
        if found.role != role:
            raise ImportRefused(
                "data_package_wrong_role",
                f"{where} version {ref.version}: {path!r} has the role {found.role}; data_package.{key} needs"
                f" a file of the role {role}",
                400,
            )
        pin.files[key] = found
    if "case_metadata" in pin.files:
        _check_metadata(phase, pin.files["case_metadata"], where)
    return pin


def _check_metadata(phase: Phase, found: DataPackageFile, where: str) -> None:
    """The bundle's rules for a metadata CSV and the audit's subgroups, on the package's file (at import, since
    the file is on the server, not in the bundle)."""
    with found.file.open("rb") as fh:
        data = fh.read(case_metadata.MAX_BYTES + 1)
    problems = case_metadata.problems(data, found.path)
    if len(data) > case_metadata.MAX_BYTES:
        problems.append(f"{found.path!r} is larger than {case_metadata.MAX_BYTES} bytes")
    if not problems:
        problems = subgroup_problems(phase, case_metadata.columns(data, found.path), found.path)
    if problems:
        raise ImportRefused("bad_case_metadata", f"{where}: {'; '.join(problems)}", 400)


def labels_stay_with_owner(phase: ChallengePhase) -> bool:
    """Whether the phase's annotations are another host team's package labels, which its hosts may not
    download (the EvalAI face's phase detail gives hosts the annotation file otherwise)."""
    version = phase.data_package_version
    if version is None or not phase.test_annotation:
        return False
    if version.package.host_team_id == phase.challenge.host_team_id:
        return False
    return version.files.filter(file=phase.test_annotation.name).exists()


def pinned_package(user, phase: ChallengePhase) -> dict | None:
    """The phase's pin as readers are told it ({name, version}), to those who may see the package's card."""
    version = phase.data_package_version
    if version is None or not can_view(user, version.package):
        return None
    return {"name": version.package.slug, "version": version.number}


def pinned_files(phase: ChallengePhase) -> dict[str, DataPackageFile]:
    """Bundle key (``annotations``, ``test_inputs``, ``case_metadata``) → the pinned version's file the phase
    takes it from; empty without a pin. The phase names the stored file itself, so its field finds the row
    (of the role the key needs: files with the same bytes share one stored copy)."""
    version = phase.data_package_version
    if version is None:
        return {}
    named = {key: getattr(phase, PHASE_FIELDS[key][0]).name for key in PHASE_FIELDS}
    rows = list(version.files.filter(file__in=[name for name in named.values() if name]).order_by("path"))
    found: dict[str, DataPackageFile] = {}
    for key, name in named.items():
        role = PACKAGE_KEYS[key][0]
        match = next((row for row in rows if row.file.name == name and row.role == role), None)
        if name and match is not None:
            found[key] = match
    return found


def version_files(version: DataPackageVersion, digests: dict[str, str | None]) -> dict[str, DataPackageFile]:
    """Bundle key → the version's file with that SHA-256 (of the role the key needs): the files a phase took
    from a version it no longer pins (an evaluation records the version and its annotations' SHA-256)."""
    wanted = {key: digest for key, digest in digests.items() if digest}
    rows = list(version.files.filter(sha256__in=set(wanted.values())).order_by("path"))
    found: dict[str, DataPackageFile] = {}
    for key, digest in wanted.items():
        role = PACKAGE_KEYS[key][0]
        match = next((row for row in rows if row.sha256 == digest and row.role == role), None)
        if match is not None:
            found[key] = match
    return found


def package_file_of(version_id: int, name: str) -> bool:
    """Whether the stored file ``name`` is one of that package version's files."""
    return DataPackageFile.objects.filter(version_id=version_id, file=name).exists()


def stored_by_a_package(name: str) -> bool:
    """Whether a package version names this stored file (retention must never delete it)."""
    return DataPackageFile.objects.filter(file=name).exists()
