"""Real public EvalAI configs (``../shared/corpus/evalai-configs``) read in config-only mode.

A config that EvalAI accepts must be accepted; the few that are really broken must fail with a
precise error, pinned here with the reason. Notable warnings (typos EvalAI silently ignores, odd
dates, non-Starters layouts) are pinned too, with their lines.
"""

from __future__ import annotations

import csv
import datetime as dt

import pytest

from assay.bundle import BundleError, read_bundle
from tests import corpus

CORPUS = corpus.CONFIGS
CONFIGS = sorted(p.name for p in CORPUS.glob("*.yaml")) if CORPUS.is_dir() else []


def test_the_corpus_is_there() -> None:
    """The parametrized tests below are empty without it; this one says so (a failure under CI)."""
    assert len(CONFIGS) >= 60, corpus.need(CORPUS)


# file → ([(code, line, key), ...], why EvalAI refuses it too)
BROKEN = {
    "samuki__EvalAI-Starters.yaml": (
        [("incorrect_default_order_by", 23, "leaderboard.0.schema.default_order_by")],
        "default_order_by 'Total' is not among the labels ['Accuracy', 'F1-score']; EvalAI refuses it too",
    ),
    "Bhaavya__analogyeval.yaml": (
        [
            ("missing_dataset_splits_key", 1, "dataset_splits"),
            ("no_key_for_challenge_phase_splits", 1, "challenge_phase_splits"),
        ],
        "no dataset_splits and no challenge_phase_splits: EvalAI's validator says 'There is no key for dataset"
        " splits' and its zip upload fails on the missing keys",
    ),
}

# file → (line, key) of a pairing listed twice: EvalAI's zip upload creates both rows, so it runs them.
DUPLICATE_PHASE_SPLITS = {"liushasha2021__EvalAI-CoG.yaml": (206, "challenge_phase_splits.1")}

# file → [(line, key, missing settings)]: EvalAI's zip upload fills them in; its GitHub validator refuses.
PHASE_SPLIT_DEFAULTS = {
    "HelmholtzAI-FZJ__juelich_challenges-template-challenge.yaml": [
        (69, "challenge_phase_splits.0", "is_leaderboard_order_descending")
    ],
    "live-wire__EvalAI-Examples.yaml": [
        (40, "challenge_phase_splits.0", "leaderboard_decimal_precision, is_leaderboard_order_descending"),
        (44, "challenge_phase_splits.1", "leaderboard_decimal_precision, is_leaderboard_order_descending"),
    ],
}


def _read(name: str):
    return read_bundle(CORPUS / name)


def _warnings(name: str) -> list:
    with _read(name) as bundle:
        return bundle.warnings


# --- every config ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in CONFIGS if n not in BROKEN])
def test_config_validates_in_config_only_mode(name: str) -> None:
    with _read(name) as bundle:
        assert bundle.config_only
        assert bundle.config.title
        assert bundle.config.challenge_phases and bundle.config.leaderboard
        assert bundle.missing_files, "config-only mode lists the files it could not check"
        assert "config_only" in {w.code for w in bundle.warnings}
        for problem in bundle.warnings:
            assert problem.severity == "warning"
            assert problem.file == name
            if problem.key:  # a problem about a key says on which line it is
                assert problem.line and problem.line > 0, problem


@pytest.mark.parametrize(("name", "expected", "reason"), [(n, *v) for n, v in BROKEN.items()])
def test_broken_config_fails_precisely(name: str, expected: list, reason: str) -> None:
    with pytest.raises(BundleError) as info:
        _read(name)
    errors = info.value.errors
    assert [(e.code, e.line, e.key) for e in errors] == expected, reason
    assert {e.file for e in errors} == {name}
    assert f"{name}:{expected[0][1]}" in str(info.value)


def test_warning_pins_are_complete() -> None:
    """Every config outside BROKEN is accepted; the EvalAI leniencies it relies on are pinned below, and no others."""
    seen = {}
    for name in CONFIGS:
        if name in BROKEN:
            continue
        codes = {w.code for w in _warnings(name)}
        seen[name] = codes
    assert {n for n, c in seen.items() if "duplicate_phase_split" in c} == set(DUPLICATE_PHASE_SPLITS)
    assert {n for n, c in seen.items() if "phase_split_defaults" in c} == set(PHASE_SPLIT_DEFAULTS)


@pytest.mark.parametrize(("name", "line", "key"), [(n, *v) for n, v in DUPLICATE_PHASE_SPLITS.items()])
def test_duplicate_phase_split_is_accepted_with_a_warning(name: str, line: int, key: str) -> None:
    with _read(name) as bundle:
        (warning,) = [w for w in bundle.warnings if w.code == "duplicate_phase_split"]
        assert len(bundle.config.challenge_phase_splits) == 2  # both entries read; the server keeps one row
    assert (warning.line, warning.key, warning.file) == (line, key, name)
    assert "first at challenge_phase_splits.0" in warning.message and "keeps one leaderboard" in warning.message


@pytest.mark.parametrize("name", sorted(PHASE_SPLIT_DEFAULTS))
def test_phase_split_settings_evalai_defaults_are_warned(name: str) -> None:
    found = [(w.line, w.key, w.message) for w in _warnings(name) if w.code == "phase_split_defaults"]
    assert [(line, key) for line, key, _ in found] == [(line, key) for line, key, _ in PHASE_SPLIT_DEFAULTS[name]]
    for (_, _, message), (_, _, missing) in zip(found, PHASE_SPLIT_DEFAULTS[name], strict=True):
        assert message.startswith(f"{missing} not set")
    with _read(name) as bundle:
        assert all(ps.is_leaderboard_order_descending for ps in bundle.config.challenge_phase_splits)


def test_broken_list_is_current() -> None:
    """The pins above name files that exist (a renamed corpus file must not silently drop a pin)."""
    assert set(BROKEN) <= set(CONFIGS)


def test_sources_list_every_config() -> None:
    with open(CORPUS / "SOURCES.tsv", newline="", encoding="utf-8") as fh:
        listed = {row["file"] for row in csv.DictReader(fh, delimiter="\t")}
    assert listed == set(CONFIGS)


# --- pinned warnings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "line", "key"),
    [
        ("Natsume0124__MRC.yaml", 231, "challenge_phase_splits.1.showeceution_time"),
        ("Natsume0124__MRC-2.yaml", 121, "challenge_phase_splits.1.showeceution_time"),
        (
            "Natsume0124__Multimodal-Reasoning-Competition.yaml",
            199,
            "challenge_phase_splits.1.showeceution_time",
        ),
    ],
)
def test_showeceution_time_typo_suggests_show_execution_time(name: str, line: int, key: str) -> None:
    found = [w for w in _warnings(name) if w.key == key]
    assert len(found) == 1
    warning = found[0]
    assert (warning.code, warning.line, warning.file) == ("unknown_key", line, name)
    assert "did you mean 'show_execution_time'" in warning.message


def test_commented_out_typo_is_not_reported() -> None:
    """OpenPecha has ``# showeceution_time: False``: a comment, so nothing to warn about."""
    assert not [w for w in _warnings("OpenPecha__EvalAi_OCR_Challenge.yaml") if "showeceution" in (w.key or "")]


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("metro-smiles__Sample_EvalAIChallenge.yaml", 19),
        ("xinshuoweng__EvalAI-Starters-AIODrive-Trajectory.yaml", 17),
    ],
)
def test_blocked_emails_domains_typo_suggests_blocked_email_domains(name: str, line: int) -> None:
    found = [w for w in _warnings(name) if w.key == "blocked_emails_domains"]
    assert [(w.code, w.line) for w in found] == [("unknown_key", line)]
    assert "did you mean 'blocked_email_domains'" in found[0].message
    with _read(name) as bundle:
        assert bundle.config.blocked_email_domains == []  # ignored, as EvalAI ignores it


def test_single_digit_month_dates_parse() -> None:
    """``start_date: 2023-3-21 16:00:00`` is a YAML timestamp (one-digit month and day are allowed)."""
    with _read("Tokiwa-17__EvalAI-Starters.yaml") as bundle:
        phase = bundle.config.challenge_phases[0]
    assert phase.start_date == dt.datetime(2023, 3, 21, 16, 0, tzinfo=dt.UTC)
    assert phase.end_date == dt.datetime(2023, 6, 1, 15, 59, tzinfo=dt.UTC)


def test_bhaavya_is_refused_for_its_splits_not_for_its_folder_script() -> None:
    """EvalAI refuses it for want of dataset and phase splits; its ``evaluation_script/`` folder is no error here."""
    name = "Bhaavya__analogyeval.yaml"
    with pytest.raises(BundleError) as info:
        _read(name)
    problems = info.value.problems
    assert not [p for p in problems if p.key == "evaluation_script"]
    # what else EvalAI would silently drop is still said, with lines
    stray = [w for w in info.value.warnings if w.key == "challenge_phases.0.leaderboard_id"]
    assert [(w.code, w.line) for w in stray] == [("unknown_key", 84)]
    assert "There is no key for dataset splits" in info.value.errors[0].message


def test_meta_attribute_keys_evalai_ignores_are_warned() -> None:
    warnings = _warnings("YSKartal__vadis-test.yaml")
    stray = [w for w in warnings if w.key and w.key.endswith(".is_visible")]
    assert [(w.line, w.key) for w in stray][0] == (
        61,
        "challenge_phases.0.submission_meta_attributes.0.is_visible",
    )
    assert all(w.code == "unknown_key" for w in stray)


def test_evalai_repo_example_validates_without_key_warnings() -> None:
    """Cloud-CV/EvalAI's own example zip config: nothing unknown, nothing broken."""
    assert [w.code for w in _warnings("Cloud-CV__EvalAI.yaml")] == ["config_only"]
