"""EvalAI's own example bundles (Cloud-CV/EvalAI ``examples/``), read as EvalAI reads them.

example1, example2 and example4 are valid: their zips (and the folders they were made from, whose
config is named ``zip_challenge.yaml`` — the one YAML file, as EvalAI's zip upload takes it) read
without a problem. example3 is deliberately broken; EvalAI's tests expect, among the rest, three
errors: no ``evaluation_script`` key, ``default_order_by: aa`` that is no label, and a phase with
no submission limit at all, whose ``max_submissions_per_month`` EvalAI sets to null and refuses.
"""

from __future__ import annotations

import pytest

from assay.bundle import BundleError, read_bundle
from tests import corpus

EXAMPLES = corpus.BUNDLES / "evalai-examples"
# bundle → (phase-split pairings (phase, leaderboard, split) EvalAI creates from it)
ONE_PHASE = [(1, 1, 1)]
TWO_PHASES = [(1, 1, 1), (1, 2, 1), (2, 1, 1), (2, 2, 2)]  # example4: two phases, two leaderboards
VALID = {
    "example1/test_zip_file.zip": ONE_PHASE,
    "example1/test_zip_file": ONE_PHASE,  # its config is zip_challenge.yaml, the folder's one YAML file
    "example2/test_zip_file.zip": ONE_PHASE,  # everything inside test_zip_file/, config zip_challenge.yaml
    "example2/test_zip_file": ONE_PHASE,
    "example4/test_zip_file.zip": TWO_PHASES,
    "example4/test_zip_file": TWO_PHASES,  # holds challenge_config.yaml and zip_challenge.yaml: the first wins
}


@pytest.mark.parametrize(("path", "pairings"), sorted(VALID.items()))
def test_valid_examples_read_cleanly(path: str, pairings: list) -> None:
    corpus.need(EXAMPLES)
    with read_bundle(EXAMPLES / path) as bundle:
        assert bundle.warnings == []
        config = bundle.config
        assert config.title == "Challenge Title"
        assert bundle.annotations == {phase.id: "test_annotation.txt" for phase in config.challenge_phases}
        assert sorted(bundle.evaluation_script.names) == ["__init__.py", "main.py"]  # __MACOSX left out
        assert bundle.logo and bundle.logo[0] == "logo.png"
        assert set(bundle.html) == {
            "description",
            "evaluation_details",
            "terms_and_conditions",
            "submission_guidelines",
        }
        assert [ps.key for ps in config.challenge_phase_splits] == pairings
        assert {ps.visibility for ps in config.challenge_phase_splits} == {3}


def test_example2_keeps_its_own_monthly_limit() -> None:
    corpus.need(EXAMPLES)
    with read_bundle(EXAMPLES / "example2/test_zip_file.zip") as bundle:
        (phase,) = bundle.config.challenge_phases
    assert (phase.max_submissions, phase.effective_max_per_month) == (1000, 345)


def test_example3_reports_what_evalai_tests_expect() -> None:
    corpus.need(EXAMPLES)
    with pytest.raises(BundleError) as info:
        read_bundle(EXAMPLES / "example3/incorrect_zip_file.zip")
    errors = {(e.code, e.key): e for e in info.value.errors}
    expected = {
        ("missing_key", "evaluation_script"): 18,  # the key is commented out; reported where the mapping starts
        ("incorrect_default_order_by", "leaderboard.0.schema.default_order_by"): 23,
        ("max_submissions_per_month_null", "challenge_phases.0.max_submissions_per_month"): 37,
    }
    for where, line in expected.items():
        assert where in errors, f"missing {where}; got {sorted(errors)}"
        error = errors[where]
        assert (error.file, error.line) == ("challenge_config.yaml", line)
        assert f"challenge_config.yaml:{line} [{where[1]}]" in str(error)
    assert "'aa'" in errors[("incorrect_default_order_by", "leaderboard.0.schema.default_order_by")].message
    assert "null" in errors[("max_submissions_per_month_null", "challenge_phases.0.max_submissions_per_month")].message
    # everything else is a key that example3 really leaves out (commented), each with its line
    others = [e for e in info.value.errors if (e.code, e.key) not in expected]
    assert others and all(e.code == "missing_key" and e.line for e in others)
    assert {e.key for e in others} >= {"title", "challenge_phases.0.codename", "challenge_phases.0.description"}
