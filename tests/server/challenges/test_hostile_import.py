"""Every hostile bundle of the bundle suite, sent through the server's import as an update of a live
challenge: refused with its reason, and the database and file storage are left exactly as they were."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from django.apps import apps

from assay.bundle import BundleError, read_bundle
from assay.server.challenges.models import Challenge
from assay.server.challenges.services.bundle_import import ImportRefused, import_bundle
from tests.factories import DEMO_BUNDLE, stored_files

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bundle"))
hostile = importlib.import_module("test_hostile")

pytestmark = pytest.mark.django_db


def database_state() -> dict[str, list]:
    """Every row of every Assay model, as plain values."""
    return {
        m.__name__: sorted(map(repr, m.objects.values_list()))
        for m in apps.get_models()
        if m.__module__.startswith("assay.server.")
    }


def test_there_are_at_least_25_hostile_cases():
    assert len(hostile.CASES) >= 25


@pytest.mark.parametrize("case", [c.param() for c in hostile.CASES])
def test_hostile_bundle_changes_nothing(case, media, host_team, tmp_path):
    with read_bundle(DEMO_BUNDLE) as bundle:
        live = import_bundle(bundle, host_team=host_team).challenge
    before = (database_state(), stored_files(media))
    source = case.build(tmp_path)
    with pytest.raises((BundleError, ImportRefused)) as info:
        with read_bundle(source, limits=case.limits) as bundle:
            import_bundle(bundle, host_team=host_team, challenge=live)
    if isinstance(info.value, BundleError):
        assert case.code in {p.code for p in info.value.errors}, info.value.problems
    else:  # config-only sources are refused by the import itself
        assert info.value.code == "config_only"
    assert (database_state(), stored_files(media)) == before
    assert Challenge.objects.get(pk=live.pk).title.startswith("Assay Demo")
