"""Real public EvalAI configs (``../shared/corpus/evalai-configs``) read in config-only mode.

A config that EvalAI accepts must be accepted; the few that are really broken must fail with a
precise error, pinned here with the reason. Notable warnings (typos EvalAI silently ignores, odd
dates, non-Starters layouts) are pinned too, with their lines.
"""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from tests import corpus

from assay.bundle import BundleError, read_bundle

CORPUS = corpus.CONFIGS
CONFIGS = sorted(p.name for p in CORPUS.glob("*.yaml")) if CORPUS.is_dir() else []


def test_the_corpus_is_there() -> None:
    """The parametrized tests below are empty without it; this one says so (a failure under CI)."""
    assert len(CONFIGS) >= 60, corpus.need(CORPUS)


# file → (code, line, key, why it is really broken)
BROKEN = {
    "samuki__EvalAI-Starters.yaml": (
        "incorrect_default_order_by",
        23,
        "leaderboard.0.schema.default_order_by",
        "default_order_by 'Total' is not among the labels ['Accuracy', 'F1-score']; EvalAI refuses it too",
    ),
    "liushasha2021__EvalAI-CoG.yaml": (
        "duplicate_phase_split",
        206,
        "challenge_phase_splits.1",
        "phase 1 / leaderboard 1 / split 1 is listed twice; EvalAI's unique triple makes the second insert fail",
    ),
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


@pytest.mark.parametrize(("name", "code", "line", "key", "reason"), [(n, *v) for n, v in BROKEN.items()])
def test_broken_config_fails_precisely(name: str, code: str, line: int, key: str, reason: str) -> None:
    with pytest.raises(BundleError) as info:
        _read(name)
    errors = info.value.errors
    assert [(e.code, e.line, e.key) for e in errors] == [(code, line, key)], reason
    assert errors[0].file == name
    assert f"{name}:{line}" in str(info.value)


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


def test_bhaavya_folder_script_and_no_splits_accepted_with_warnings() -> None:
    name = "Bhaavya__analogyeval.yaml"
    with _read(name) as bundle:
        config = bundle.config
        codes = [w.code for w in bundle.warnings]
        assert config.evaluation_script == "evaluation_script/"
        assert "evaluation_script" in bundle.missing_files
        assert config.dataset_splits == [] and config.challenge_phase_splits == []
        assert config.leaderboard[0].schema_.labels[0] == "Target Concept Coverage"  # labels with spaces
        assert codes.count("phase_without_leaderboard") == len(config.challenge_phases) == 2
        assert "no_dataset_splits" in codes
        # phases carry a leaderboard_id EvalAI does not know: warned, with its line
        stray = [w for w in bundle.warnings if w.key == "challenge_phases.0.leaderboard_id"]
        assert [(w.code, w.line) for w in stray] == [("unknown_key", 84)]


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
