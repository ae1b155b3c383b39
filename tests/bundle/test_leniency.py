"""Values EvalAI's serializers accept that a strict reader might refuse — and one it must refuse."""

from __future__ import annotations

import pytest
from builders import dump_config, minimal_config

from assay.bundle import BundleError, parse_config


@pytest.mark.parametrize("key", ["prizes", "sponsors", "tags"])
def test_empty_list_keys_mean_no_items(key):
    config = minimal_config()
    config[key] = None
    parsed, _, _ = parse_config(dump_config(config))
    assert getattr(parsed, key) == []


@pytest.mark.parametrize(
    ("key", "code"),
    [("dataset_splits", "missing_dataset_splits_key"), ("challenge_phase_splits", "no_key_for_challenge_phase_splits")],
)
@pytest.mark.parametrize("value", [None, [], "absent"])
def test_no_splits_is_refused_as_evalai_refuses_it(key, code, value):
    """EvalAI: 'There is no key for dataset splits' / '... for challenge phase splits'; nothing could be ranked."""
    config = minimal_config()
    if value == "absent":
        del config[key]
    else:
        config[key] = value
    if key == "dataset_splits":
        config["challenge_phase_splits"] = []  # nothing may refer to the splits that are gone
    with pytest.raises(BundleError) as err:
        parse_config(dump_config(config))
    assert code in [p.code for p in err.value.errors]


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
