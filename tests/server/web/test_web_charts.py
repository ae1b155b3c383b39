"""The leaderboard chart's axes and the participant's view of evaluation logs (issue 17)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from assay.server.submissions.services.log_text import empty_log, without_server_paths
from assay.server.web.charts import Point, score_history_svg, time_labels, value_axis


@pytest.mark.parametrize(
    "values, precision",
    [([0.575], 4), ([1.0, 1.0], 4), ([0.0], 2), ([0.2, 0.9], 2), ([0.5, 1.0], 3)],
)
def test_a_score_axis_in_zero_to_one_stays_there_and_encloses_the_values(values, precision):
    lo, hi, ticks = value_axis(values, precision)
    assert 0 <= lo <= min(values) <= max(values) <= hi <= 1
    assert ticks[0] == pytest.approx(lo) and ticks[-1] == pytest.approx(hi) and len(ticks) >= 2


def test_one_value_gets_a_narrow_band_not_plus_minus_one():
    lo, hi, _ = value_axis([0.575], 4)
    assert hi - lo <= 0.1  # was −0.425…1.575


def test_values_beyond_one_get_round_ticks():
    lo, hi, ticks = value_axis([12.3, 50.1], 2)
    assert (lo, hi) == (10, 60) and ticks == [10, 20, 30, 40, 50, 60]
    lo, hi, _ = value_axis([-3.2], 1)
    assert lo < -3.2 < hi


def test_the_time_axis_shows_the_time_of_day_when_both_ends_share_a_date():
    t0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC).timestamp()
    assert time_labels(t0, t0 + 3600) == ("2026-03-01 09:00", "2026-03-01 10:00 UTC")
    assert time_labels(t0, t0 + 3 * 86400) == ("2026-03-01", "2026-03-04 UTC")


def test_one_entry_draws_ticks_within_its_score():
    at = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    svg = score_history_svg([Point(at, 0.575, "A")], label="Accuracy", higher_is_better=True, precision=4)
    labels = re.findall(r'<text class="tick"[^>]*>([^<]*)</text>', svg)
    numbers = [float(x) for x in labels if re.fullmatch(r"-?[\d.]+", x)]
    assert min(numbers) <= 0.575 <= max(numbers) and max(numbers) - min(numbers) <= 0.1, labels
    assert labels[-2:] == ["2026-03-01 08:00", "2026-03-01 10:00 UTC"]  # ± an hour around the one entry


def test_logs_lose_server_folders_but_keep_file_names_and_urls():
    text = 'File "/srv/assay/worker/job-1/evaluation_script/main.py", line 3\nsee https://example.org/a/b/c'
    cleaned = without_server_paths(text)
    assert "/srv/assay" not in cleaned and '"…/main.py", line 3' in cleaned
    assert "https://example.org/a/b/c" in cleaned
    assert empty_log("stderr") == "The evaluation wrote nothing to stderr.\n"
