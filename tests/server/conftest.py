"""Server test fixtures: isolated file storage, users and teams."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_BUNDLE = REPO / "examples" / "demo-challenge"
CORPUS = REPO / "tests" / "data" / "evalai-corpus"  # a copy of ../shared/corpus/evalai-configs


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """File storage in a fresh folder, so tests can assert exactly what was written."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def host(django_user_model):
    return django_user_model.objects.create_user("host1", "host1@example.org", "pw")


@pytest.fixture
def host_team(host):
    from assay.server.teams.services import create_host_team

    return create_host_team("Hosts One", host)


def stored_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
