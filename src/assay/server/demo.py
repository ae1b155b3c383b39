"""The demo platform: users admin/host/participant/auditor, a host team, a participant team, and its challenges.

The second challenge is docker-based (static dataset). When a Docker engine answers, the demo also
builds a participant image for it from busybox (no registry needed) and saves it as a tarball ready
to upload, so container submissions can be tried without writing a Dockerfile first.

The audit templates (``examples/audit-*``) generate their cases with a seeded ``build.py``: the demo
builds each into ``VAR_DIR/demo/<name>/`` (sample submission and answered questionnaire included),
imports it, and names the demo user ``auditor`` auditor of it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from assay.bundle import read_bundle
from assay.evaluation.containers.intake import ImageRefused, read_manifest
from assay.evaluation.containers.localimages import BUSYBOX, build_image, engine, save_image

from .audits.services.auditors import add_auditor
from .challenges.models import Challenge, ChallengeAuditor, Participation
from .challenges.services.bundle_import import import_bundle
from .challenges.services.read_versions import challenge_updated
from .teams.models import HostTeam, ParticipantTeam, ParticipantTeamMember
from .teams.services import create_host_team

DEMO_HOST_TEAM = "Demo hosts"
DEMO_PARTICIPANT_TEAM = "Demo participants"
#: The participant program in the container bundle, and what the demo image runs.
PREDICTOR_PROGRAM = "participant/predict.sh"
PREDICTOR_PATH = "/opt/predict.sh"
PREDICTOR_REPOSITORY = "assay-demo/predictor"
PREDICTOR_TARBALL = Path("demo") / "demo-predictor.tar"  # under VAR_DIR
AUDIT_BUILDS = Path("demo")  # under VAR_DIR: each audit template is built into a folder of its name
AUDIT_KEY = Path("demo") / "audit-signing-key.pem"  # under VAR_DIR, with its public half beside it (.pub.pem)
_ROOTFS_VERSION = b"1"  # bump when localimages.busybox_rootfs changes, so the demo image is rebuilt


def _user(username: str, password: str, **extra):
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})
    for key, value in extra.items():
        setattr(user, key, value)
    user.set_password(password)
    user.save()
    # Demo users sign in through the normal login page, which wants a verified e-mail address.
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    return user


def predictor_changes() -> list[str]:
    """The demo image runs the program as user 1000: the platform refuses images that run as root."""
    return ["USER 1000", "CMD " + json.dumps(["/bin/sh", PREDICTOR_PATH])]


def build_predictor_tarball(client: Any, program: Path, target: Path) -> tuple[str, Path]:
    """Build the demo participant image (cached by a tag naming its content) and ``docker save`` it to ``target``.

    The tarball is written only when missing or holding another image, so ``make demo`` stays fast.
    Returns the image's tag (for ``assay push``) and the tarball.
    """
    script = Path(program).read_bytes()
    version = hashlib.sha256(_ROOTFS_VERSION + b"\0" + script).hexdigest()[:12]
    tag = f"{PREDICTOR_REPOSITORY}:{version}"
    image_id = build_image(client, tag, predictor_changes(), files={PREDICTOR_PATH: script})
    target = Path(target)
    if target.is_file():
        try:
            if read_manifest(target, max_bytes=2**31).config_digest == image_id:
                return tag, target
        except ImageRefused:
            pass  # damaged or foreign: written again below
    target.parent.mkdir(parents=True, exist_ok=True)
    return tag, save_image(client, tag, target)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _predictor_line(challenge: Challenge, bundle_path: str, site: str) -> tuple[str, Path | None]:
    """One line: where the ready-made participant image is (and the image), or why container submissions need Docker."""
    title = repr(challenge.title)
    if importlib.util.find_spec("docker") is None:
        return (
            f"Container submissions need Docker: the Docker SDK is not installed (pip install '.[containers]'),"
            f" so {title} takes uploads that no worker here can evaluate"
        ), None
    client = engine(timeout=10)
    if client is None:
        return (
            f"Container submissions need Docker: no Docker engine answers, so {title} takes uploads that no worker"
            " here can evaluate (start Docker and run make demo again for a ready-made image)"
        ), None
    program = Path(bundle_path) / PREDICTOR_PROGRAM
    if not program.is_file() or not BUSYBOX.is_file():
        missing = program if not program.is_file() else f"{BUSYBOX} (apt-get install busybox-static)"
        return f"No demo participant image for {title}: {missing} is missing", None
    try:
        tag, tarball = build_predictor_tarball(client, program, Path(settings.VAR_DIR) / PREDICTOR_TARBALL)
    except Exception as exc:  # the platform still starts; the line says what went wrong
        return f"No demo participant image for {title}: building it failed ({exc})", None
    phase = challenge.phases.order_by("pk").first()
    submit = f"{site}{reverse('web:submit', args=[challenge.pk])}"
    return (
        f"Demo participant image for {title}: upload {_shown(tarball)} at {submit}"
        f" or run: assay push {tag} --phase {phase.pk if phase else '?'}"
    ), tarball


DEMO_MODEL = "demo-predictor"
DEMO_MODEL_CARD = {
    "summary": "The demo container challenge's participant program (busybox), as a registered model.",
    "intended_use": "None: a demonstration of registering a model once and submitting it to many phases.",
    "output_significance": "Not used for patient care (research only)",
    "data_sources": "No training data: the program computes its answer.",
    "licence": "Apache-2.0",
}


def _model_line(challenge: Challenge, pteam: ParticipantTeam, participant, tarball: Path, site: str) -> str:
    """The demo image registered once as the demo team's model; a rebuilt image becomes its next version."""
    from .models_zoo.models import Model
    from .models_zoo.services import registry
    from .models_zoo.services.access import ModelRefusal

    model = Model.objects.filter(team=pteam, name=DEMO_MODEL).first()
    try:
        with tarball.open("rb") as fh:
            if model is None:
                model = registry.register(
                    participant, team=pteam, name=DEMO_MODEL, kind="image", file=fh, file_name=tarball.name,
                    card=DEMO_MODEL_CARD, label="demo",
                )  # fmt: skip
            else:
                registry.add_version(participant, model, file=fh, file_name=tarball.name, label="demo")
    except ModelRefusal as exc:
        if model is None or exc.code != "conflict":  # conflict: this image is a version already
            return f"No demo model: registering the demo image was refused ({exc.message})"
    phases = list(challenge.phases.order_by("pk"))  # two: the same model goes to both without a new upload
    page = f"{site}{reverse('web:model', args=[model.pk])}"
    runs = " and ".join(f"assay models submit {model.pk} --phase {p.pk}" for p in phases)
    return (
        f"Demo model {DEMO_MODEL!r} (id {model.pk}, the demo image registered once): {page} — submit it there"
        f" to each of the challenge's {len(phases)} phases, or run: {runs or f'assay models submit {model.pk}'}"
    )


def _same_kind(team: HostTeam, config) -> Any:
    """The host team's challenges of the bundle's kind: file or container, and its audit task if it has one.

    That key tells the demo bundles apart (even numbers, container, DR grading: ordinal, breast cancer:
    binary), so re-running the demo updates each in place and never one with another's bundle.
    """
    found = Challenge.objects.filter(host_team=team, is_docker_based=config.is_docker_based)
    tasks = {phase.audit.task for phase in config.challenge_phases if phase.audit is not None}
    if not tasks:
        return found.exclude(phases__audit__isnull=False)
    for task in tasks:
        found = found.filter(phases__audit__task=task)
    return found.distinct()


def _import(path: str, team: HostTeam, host, pteam: ParticipantTeam, exclude: int | None = None) -> Challenge:
    """Import (or update in place) a demo bundle, published and approved, with the demo team taking part.

    The challenge to update is the host team's first one of the bundle's kind (:func:`_same_kind`), so
    the demo challenges never overwrite each other.
    """
    with read_bundle(path, limits=settings.BUNDLE_LIMITS) as bundle:
        existing = _same_kind(team, bundle.config).exclude(pk=exclude).order_by("pk").first()
        report = import_bundle(bundle, host_team=team, user=host, challenge=existing)
    challenge = report.challenge
    Challenge.objects.filter(pk=challenge.pk).update(approved_by_admin=True, published=True)
    challenge_updated(challenge.pk)  # a queryset update sends no signal
    Participation.objects.get_or_create(
        challenge=challenge, team=pteam, defaults={"status": Participation.Status.APPROVED}
    )
    return challenge


def build_audit_template(source: Path, target: Path) -> Path:
    """Run the template's seeded ``build.py`` into ``target`` (a complete bundle) and return ``target``.

    Built in a fresh folder beside ``target`` and swapped in, so an interrupted build leaves no half
    bundle; the build is deterministic, so running it at every start gives the same bytes.
    """
    spec = importlib.util.spec_from_file_location(
        f"assay_demo_build_{source.name.replace('-', '_')}", source / "build.py"
    )
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{source / 'build.py'} is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        module.build(fresh)
        if target.exists():
            shutil.rmtree(target)
        fresh.rename(target)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return target


def _audit_lines(source: Path, team: HostTeam, host, pteam: ParticipantTeam, auditor, site: str) -> Iterator[str]:
    """Build, import and staff one audit template; lines say what happened or why it was skipped."""
    if not (source / "build.py").is_file():
        yield f"No audit template from {source}: its build.py is missing"
        return
    try:
        bundle = build_audit_template(source, Path(settings.VAR_DIR) / AUDIT_BUILDS / source.name)
    except Exception as exc:  # the platform still starts; the line says what went wrong
        yield f"No audit template from {source}: building it failed ({type(exc).__name__}: {exc})"
        return
    package_lines = list(_data_package_lines(bundle, team, host, site)) if source.name == DEMO_DATA_TEMPLATE else []
    challenge = _import(str(bundle), team, host, pteam)
    if not ChallengeAuditor.objects.filter(challenge=challenge, user=auditor).exists():
        add_auditor(host, challenge, auditor.username)
    submit = f"{site}{reverse('web:submit', args=[challenge.pk])}"
    yield f"Demo audit challenge {challenge.title!r} (id {challenge.pk}) built from {source} into {_shown(bundle)}"
    yield (
        f"  auditor audits it; sample submission {_shown(bundle / 'sample' / 'submission.json')}"
        f" (submit at {submit}), answers {_shown(bundle / 'sample' / 'answers.yaml')}"
    )
    yield from package_lines


#: The DR audit template's test data, published as an on-request data package of the demo host team and pinned
#: by its phase: the participant asks, the host approves, the participant downloads the inputs (never the labels).
DEMO_DATA_TEMPLATE = "audit-dr-grading"
DEMO_DATA_PACKAGE = "dr-grading-test"
DEMO_DATA_CARD = {
    "summary": "The DR grading audit's 600 synthetic test cases: the case list, reference grades and case metadata.",
    "source": "Synthetic: generated by examples/audit-dr-grading/build.py with a fixed seed; no patient behind it.",
    "collection_period": "None (generated)",
    "population": "Simulated adults with diabetes: age bands 18-44, 45-64, 65+; sex F/M; three cameras.",
    "labelling": "Reference grade 0-4 drawn per case from age-dependent weights (referable at grade 2 and above).",
    "licence": "CC0-1.0",
    "limitations": "Synthetic: for trying the platform, not for judging a real model.",
}
#: Where the template's built bundle keeps the files the package takes over, and the package's paths for them.
_DR_FILES = {
    "annotations/test_annotations.json": "labels/test_annotations.json",
    "annotations/case_metadata.csv": "metadata/case_metadata.csv",
}
_DR_EMBEDDED = (
    "    test_annotation_file: annotations/test_annotations.json\n"
    "    case_metadata_file: annotations/case_metadata.csv\n"
)


def _dr_archive(bundle: Path) -> io.BytesIO:
    """The package's zip from the built template: the case list as inputs, grades as labels, attributes as metadata."""
    grades = json.loads((bundle / "annotations" / "test_annotations.json").read_text())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inputs/cases.csv", "case_id\n" + "".join(f"{c}\n" for c in grades))
        for built, path in _DR_FILES.items():
            zf.writestr(path, (bundle / built).read_bytes())
    buffer.seek(0)
    return buffer


def _data_package_lines(bundle: Path, team: HostTeam, host, site: str) -> Iterator[str]:
    """Publish the built DR template's test data as the demo host team's on-request package (a new version only
    when the files changed) and pin the template's phase to it (its config names the package instead of files).

    The demo participant is not approved: asking, approving and downloading are the walk-through.
    """
    from .data_packages.models import DataPackage
    from .data_packages.services import publishing
    from .data_packages.services.access import DataPackageRefusal

    config = bundle / "challenge_config.yaml"
    text = config.read_text()
    if _DR_EMBEDDED not in text:
        yield f"No demo data package: {_shown(config)} does not name the annotation files the package replaces"
        return
    package = DataPackage.objects.filter(slug=DEMO_DATA_PACKAGE).first()
    if package is not None and package.host_team_id != team.pk:
        yield f"No demo data package: another host team has a package named {DEMO_DATA_PACKAGE!r}"
        return
    try:
        if package is None:
            title = "Diabetic retinopathy grading: synthetic test set"
            package = publishing.create_package(host, team.pk, DEMO_DATA_PACKAGE, title, "on_request", DEMO_DATA_CARD)
        notes = "The DR audit template's test set (examples/audit-dr-grading, seeded)."
        version = publishing.publish_version(host, package, _dr_archive(bundle), notes).number
    except DataPackageRefusal as exc:
        if exc.code != "conflict" or not package.versions.exists():  # conflict: these files are the latest already
            yield f"No demo data package: publishing it was refused ({exc.message})"
            return
        version = package.versions.order_by("-number").first().number
    pinned = (
        "    data_package:\n"
        f"      name: {DEMO_DATA_PACKAGE}\n"
        f"      version: {version}\n"
        f"      annotations: {_DR_FILES['annotations/test_annotations.json']}\n"
        f"      case_metadata: {_DR_FILES['annotations/case_metadata.csv']}\n"
    )
    config.write_text(text.replace(_DR_EMBEDDED, pinned))
    for built in _DR_FILES:
        (bundle / built).unlink()  # the phase reads them from the package alone
    page = f"{site}{reverse('web:data-package', args=[DEMO_DATA_PACKAGE])}"
    yield (
        f"Demo data package {DEMO_DATA_PACKAGE!r} (on request, v{version}; the DR audit phase pins it): {page} —"
        f" as participant: assay data request {DEMO_DATA_PACKAGE} --reason '…'; as host: approve on the page or"
        f" assay data approve {DEMO_DATA_PACKAGE} participant; then as participant: assay data download"
        f" {DEMO_DATA_PACKAGE} (the inputs; never the labels), and the host sees it in the access log"
    )


def use_demo_signing_key() -> str:
    """Sign the demo's audit manifests with a key of its own, made once, unless the operator set one.

    A demo whose manifests carry no signature could not show ``assay audit verify --public-key``. Sets
    the process's setting, so only ``assay demo`` calls it (not ``seed``, which tests call too).
    """
    from assay.evidence import signing

    if settings.AUDIT_SIGNING_KEY:
        return f"Audit manifests are signed with ASSAY_AUDIT_SIGNING_KEY ({settings.AUDIT_SIGNING_KEY})"
    private = Path(settings.VAR_DIR) / AUDIT_KEY
    public = private.with_suffix(".pub.pem")
    if not private.exists():
        private.parent.mkdir(parents=True, exist_ok=True)
        key = signing.generate_key()
        private.write_bytes(signing.private_pem(key))
        private.chmod(0o600)
        public.write_bytes(signing.public_pem(key))
    settings.AUDIT_SIGNING_KEY = str(private)
    return (
        f"Audit manifests are signed with the demo's own key {_shown(private)};"
        f" verify with assay audit verify --public-key {_shown(public)}"
    )


def seed(
    password: str,
    bundle_path: str,
    container_bundle_path: str | None = None,
    site: str = "",
    audit_bundle_paths: Sequence[str] = (),
) -> Iterator[str]:
    """Idempotent: run it again and it resets the demo passwords and updates the demo challenges.

    ``container_bundle_path`` adds the docker-based demo challenge (skipped with a line when the
    folder is missing); ``audit_bundle_paths`` the audit templates (``examples/audit-*``, built first),
    each audited by the demo user ``auditor``; ``site`` (``http://host:port``) prefixes the pages it names.
    """
    with transaction.atomic():
        _user("admin", password, is_staff=True, is_superuser=True)
        host = _user("host", password)
        participant = _user("participant", password)
        auditor = _user("auditor", password)
        team = HostTeam.objects.filter(name=DEMO_HOST_TEAM).first() or create_host_team(DEMO_HOST_TEAM, host)
        pteam, _ = ParticipantTeam.objects.get_or_create(
            name=DEMO_PARTICIPANT_TEAM, defaults={"created_by": participant}
        )
        ParticipantTeamMember.objects.get_or_create(team=pteam, user=participant)
    yield (
        f"Demo users: admin, host, participant, auditor — password {password!r} (set ASSAY_DEMO_PASSWORD to change it)"
    )
    challenge = _import(bundle_path, team, host, pteam)
    yield f"Demo challenge {challenge.title!r} (id {challenge.pk}) imported from {bundle_path}"
    if container_bundle_path and not Path(container_bundle_path).exists():
        yield f"No container demo challenge: {container_bundle_path} is missing"
    elif container_bundle_path:
        container = _import(container_bundle_path, team, host, pteam, exclude=challenge.pk)
        yield f"Demo container challenge {container.title!r} (id {container.pk}) imported from {container_bundle_path}"
        line, tarball = _predictor_line(container, container_bundle_path, site)
        yield line
        if tarball is not None:
            yield _model_line(container, pteam, participant, tarball, site)
    for source in audit_bundle_paths:
        yield from _audit_lines(Path(source), team, host, pteam, auditor, site)
    if settings.EMAIL_BACKEND.endswith("console.EmailBackend"):
        yield (
            "E-mail goes to this log (console backend): sign up at /accounts/signup/ and open the"
            " 'E-mail verification link' printed here"
        )
