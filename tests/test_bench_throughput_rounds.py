"""The throughput row's rounds (bench/run.py): the row reports the rounds' medians with each round's figures beside
them, judged on the medians and on nothing lost in any round; the baselines once. No figure is measured here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def run():
    sys.path.insert(0, str(BENCH))
    try:
        import run

        yield run
    finally:
        sys.path.remove(str(BENCH))


def a_round(rate: float, server: float, worker: float, lost: int = 0, load: float = 1.0) -> dict:
    total = round(server + worker, 2)
    return {
        "submissions": 10,
        "workers": "embedded, ASSAY_EMBEDDED_WORKER=process",
        "submit_rate_per_s": rate * 2,
        "evaluated_per_s": rate,
        "evaluated_per_s_steady": rate + 1,
        "wall_s": 10 / rate,
        "statuses": {"finished": 10 - lost, **({"missing": lost} if lost else {})},
        "lost": lost,
        "background_tasks_left": 0,
        "cpu_ms_per_submission": {
            "server": server,
            "embedded_worker": worker,
            "total": total,
            "load_average": [[load] * 3, [load] * 3],
        },  # fmt: skip
        "load_average": {"before": [load] * 3, "after": [load + 0.5] * 3},
        "warm_up": {"submissions": 2, "seconds": 1.5},
        "cpu_note": "parts",
        "client": {"processes": 4, "cpu_ms_per_submission": 0.25, "note": "how"},
    }


def test_the_row_is_the_rounds_median_with_every_round_kept(run):
    first = a_round(60.0, 8.0, 12.0) | {"baseline_raw_claim_transaction": {"per_s": 3000.0},
                                         "baseline_client_alone": {"per_s": 9000.0}}  # fmt: skip
    row = run.summarize_rounds([first, a_round(110.0, 5.0, 7.0), a_round(90.0, 6.0, 9.0, load=3.0)], 10, 2)
    assert row["rounds_run"] == 3 and len(row["rounds"]) == 3
    assert row["evaluated_per_s"] == 90.0 and row["evaluated_per_s_range"] == [60.0, 110.0]
    assert row["evaluated_per_s_steady"] == 91.0
    assert row["cpu_ms_per_submission"] == {"server": 6.0, "embedded_worker": 9.0, "total": 15.0}
    assert row["cpu_ms_per_submission_range"]["total"] == [12.0, 20.0]
    assert [r["evaluated_per_s"] for r in row["rounds"]] == [60.0, 110.0, 90.0]
    assert row["rounds"][2]["load_average"] == {"before": [3.0] * 3, "after": [3.5] * 3}
    assert row["rounds"][0]["warm_up"]["submissions"] == 2 and row["warm_up_submissions"] == 2
    assert row["lost"] == 0 and row["statuses"] == {"finished": 30}
    assert row["cpu_model"]
    # the baselines once, on the row, not in a round
    assert row["baseline_raw_claim_transaction"]["per_s"] == 3000.0 and row["baseline_client_alone"]["per_s"] == 9000.0
    assert row["ratio_raw_claims_to_evaluations"] == round(3000 / 90, 1)
    assert all("baseline_client_alone" not in r and "baseline_raw_claim_transaction" not in r for r in row["rounds"])
    assert row["client"]["processes"] == 4 and row["client"]["cpu_ms_per_submission"] == 0.25
    assert row["meets_target"] is False  # median 90/s


def test_the_target_is_judged_on_the_medians_and_nothing_lost_in_any_round(run):
    fast = [a_round(120.0, 6.0, 8.0), a_round(130.0, 6.0, 8.0), a_round(40.0, 20.0, 20.0)]
    assert run.summarize_rounds(fast, 10, 2)["meets_target"] is True  # one slow round does not decide it
    one_lost = [a_round(120.0, 6.0, 8.0), a_round(130.0, 6.0, 8.0, lost=1), a_round(125.0, 6.0, 8.0)]
    row = run.summarize_rounds(one_lost, 10, 2)
    assert row["lost"] == 1 and row["meets_target"] is False
    assert row["statuses"] == {"finished": 29, "missing": 1}


def test_the_table_prints_the_median_the_range_and_every_round(run):
    rounds = [a_round(60.0, 8.0, 12.0), a_round(110.0, 5.0, 7.0), a_round(90.0, 6.0, 9.0, load=3.0)]
    row = run.summarize_rounds(rounds, 10, 2)
    (name, measured, *_), *per_round = run.table({"throughput": row})
    assert name == "throughput"
    assert "90.0/s median of 3 rounds (60.0–110.0; steady 91.0)" in measured
    assert "lost 0 in all" in measured and "(rounds 12.00–20.00 ms)" in measured
    assert [r[0].strip() for r in per_round] == ["round 1", "round 2", "round 3"]
    assert per_round[0][1].startswith("60.0/s (steady 61.0)") and "load 3.0 → 3.5" in per_round[2][1]
    assert "warm-up 2 in 1.5 s" in per_round[1][2]


def test_steady_rate_leaves_out_the_first_and_last_tenth(run):
    # 1 s of start-up, then one evaluation every 10 ms, then a 1 s tail: the steady rate is the middle's 100/s
    times = [0.0] + [1.0 + 0.01 * i for i in range(98)] + [3.0]
    assert run.steady_rate(times) == 100.0
    assert run.steady_rate(times[:9]) is None
