"""Values EvalAI's serializers accept that a strict reader might refuse — and one it must refuse."""

from __future__ import annotations

import pytest
from builders import dump_config, minimal_config

from assay.bundle import BundleError, parse_config


@pytest.mark.parametrize("key", ["prizes", "sponsors", "dataset_splits", "challenge_phase_splits", "tags"])
def test_empty_list_keys_mean_no_items(key):
    config = minimal_config()
    config[key] = None
    if key == "dataset_splits":
        config["challenge_phase_splits"] = None  # nothing may refer to the splits that are gone
    parsed, _, _ = parse_config(dump_config(config))
    assert getattr(parsed, key) == []


def test_quoted_visibility_is_a_number():
    config = minimal_config()
    config["challenge_phase_splits"][0]["visibility"] = "2"
    parsed, _, _ = parse_config(dump_config(config))
    assert parsed.challenge_phase_splits[0].visibility == 2


def test_boolean_is_not_an_id():
    config = minimal_config()
    config["dataset_splits"][0]["id"] = True
    with pytest.raises(BundleError) as err:
        parse_config(dump_config(config))
    problem = err.value.errors[0]
    assert problem.key == "dataset_splits.0.id" and "boolean" in problem.message
