"""The leaderboard API beyond visibility: page shape, EvalAI rows, exports, history, rank aggregation,
and the bundle keys that configure them (``reveal_at``, ``rank_aggregation``)."""

from __future__ import annotations

import csv
import io
import shutil

import pytest
import yaml
from rest_framework.test import APIClient

from assay.bundle import BundleError, read_bundle
from assay.server.challenges.services.bundle_import import import_bundle
from assay.server.leaderboards.services.exports import HOST_COLUMNS, PARTICIPANT_COLUMNS
from tests.factories import DEMO_BUNDLE, World

pytestmark = pytest.mark.django_db


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def streamed(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_page_shape_and_pagination(world):
    for i in range(5):
        world.result(f"T{i}", 0.1 * i, 0.5)
    ps = world.ps()
    body = api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard?page=2&page_size=2&order_by=Accuracy").json()
    assert (body["count"], body["page"], body["page_size"], body["pages"]) == (5, 2, 2, 3)
    assert "page=3" in body["next"] and "page=1" in body["previous"] and "order_by=Accuracy" in body["next"]
    assert [r["rank"] for r in body["results"]] == [3, 4]
    assert body["labels"] == ["Accuracy", "F1"] and body["order_by"] == "Accuracy" and body["ascending"] is False
    assert body["phase_split"]["precision"] == 3 and body["entries"] == "public"
    row = body["results"][0]
    assert set(row) >= {"rank", "team", "submission", "scores", "errors", "display", "execution_time", "is_own"}
    bad = api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard?order_by=Loss")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_order_by"
    assert api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard?page=x").status_code == 400
    assert api().get("/api/v1/phase-splits/999999/leaderboard").status_code == 404
    assert api().get(f"/api/v1/phase-splits/{10**30}/leaderboard").status_code == 404  # no overflow
    assert api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard?page={10**30}").json()["results"] == []
    assert api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard/history?teams={10**30}").status_code == 200


def test_evalai_shaped_rows(world):
    world.result("A", 0.5, None, errors={"public": {"error_Accuracy": 0.01}})
    ps = world.ps()
    ps.phase.is_partial_submission_evaluation_enabled = True
    ps.phase.save()
    row = api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard?shape=evalai").json()["results"][0]
    assert row["submission__participant_team__team_name"] == "A" and row["challenge_phase_split"] == ps.pk
    assert row["result"] == [0.5, "#"] and row["error"] == [0.01, None]
    assert row["filtering_score"] == 0.5 and row["filtering_error"] == 0.01
    assert row["leaderboard__schema"]["labels"] == ["Accuracy", "F1"] and "submission__execution_time" in row


def test_leaderboard_csv_export_is_the_whole_board_unrounded(world):
    world.result("A", 0.123456, 0.5)
    world.result("=cmd", 0.9, None, seconds=3)  # a team name that a spreadsheet would run
    world.result("H", 0.7, 0.7, baseline=True)
    response = api().get(f"/api/v1/phase-splits/{world.ps().pk}/leaderboard/export.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(streamed(response))))
    assert rows[0][:8] == ["rank", "team", "team_id", "baseline", "Accuracy", "F1", "error_Accuracy", "error_F1"]
    assert [(r[0], r[1], r[4], r[5]) for r in rows[1:]] == [
        ("1", "'=cmd", "0.9", ""),
        ("", "H", "0.7", "0.7"),
        ("2", "A", "0.123456", "0.5"),
    ]
    assert rows[1][rows[0].index("execution_time")] == "3.0"


def test_submissions_csv_hosts_everything_participants_their_own(world, django_user_model):
    a = world.result("A", 0.5, 0.5)
    a.method_name = "+SUM(A1)"
    a.save()
    world.result("A", 0.6, 0.5, hidden=True)
    world.result("B", 0.7, 0.5)
    phase = world.ps().phase
    url = f"/api/v1/phases/{phase.pk}/submissions/export.csv"
    hosts = list(csv.reader(io.StringIO(streamed(api(world.host).get(url)))))
    assert tuple(hosts[0]) == HOST_COLUMNS and len(hosts) == 4
    by_id = {int(r[0]): r for r in hosts[1:]}
    assert by_id[a.pk][1:5] == ["A", "userA", "A@team.example", ""]
    assert by_id[a.pk][HOST_COLUMNS.index("Method Name")] == "'+SUM(A1)"
    assert by_id[a.pk][HOST_COLUMNS.index("Challenge Phase")] == "Development"
    own = list(csv.reader(io.StringIO(streamed(api(world.users["A"]).get(url)))))
    assert tuple(own[0]) == PARTICIPANT_COLUMNS and [r[0] for r in own[1:]] == ["A"]  # its hidden one left out
    stranger = django_user_model.objects.create_user("nobody", "n@x.example", "pw")
    assert api(stranger).get(url).status_code == 403
    assert api().get(url).status_code in (401, 403)


def test_history_lines_and_top_score_over_time(world):
    world.result("A", 0.5, 0)
    world.result("B", 0.6, 0)
    world.result("A", 0.4, 0)  # not an improvement
    world.result("A", 0.7, 0)
    world.result("B", 0.65, 0)
    world.result("C", 0.1, 0, baseline=True)  # baselines have no line
    body = api().get(f"/api/v1/phase-splits/{world.ps().pk}/leaderboard/history").json()
    assert [(p["team"]["name"], p["value"]) for p in body["top"]] == [("A", 0.5), ("B", 0.6), ("A", 0.7)]
    lines = {line["team"]["name"]: [p["value"] for p in line["points"]] for line in body["teams"]}
    assert lines == {"A": [0.5, 0.7], "B": [0.6, 0.65]}
    f1 = api().get(f"/api/v1/phase-splits/{world.ps().pk}/leaderboard/history?label=F1&teams=99999").json()
    assert f1["label"] == "F1" and f1["teams"][0]["points"] == []
    assert api().get(f"/api/v1/phase-splits/{world.ps().pk}/leaderboard/history?label=Nope").status_code == 400
    ps = world.ps()
    ps.show_scores_on_leaderboard = False
    ps.save()
    assert api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard/history").status_code == 403


def _aggregate(world: World, **agg) -> None:
    board = world.ps("test", "public").leaderboard
    board.schema = {**board.schema, "rank_aggregation": agg}
    board.save()


def _overall(body: dict) -> list[tuple]:
    return [(r["team"]["name"], r["overall"]["rank"], r["overall"]["value"]) for r in body["results"]]


def test_rank_aggregation_mean_and_median_over_labels_and_splits(world):
    # public split: Accuracy A>B>C, F1 C>B>A; private split Accuracy B>A>C
    world.result("A", 0.9, 0.1, phase="test", private={"Accuracy": 0.5, "F1": 0.5})
    world.result("B", 0.8, 0.5, phase="test", private={"Accuracy": 0.9, "F1": 0.5})
    world.result("C", 0.7, 0.9, phase="test", private={"Accuracy": 0.1, "F1": 0.5})
    ps = world.ps("test", "public")
    _aggregate(world, method="mean_rank", labels=["Accuracy", "F1"], title="Overall")
    body = api(world.host).get(f"/api/v1/phase-splits/{ps.pk}/leaderboard").json()
    assert _overall(body) == [("A", 1, 2.0), ("B", 1, 2.0), ("C", 1, 2.0)]  # 1+3, 2+2, 3+1
    _aggregate(world, method="mean_rank", labels=["Accuracy"], splits=["public", "private"])
    body = api(world.host).get(f"/api/v1/phase-splits/{ps.pk}/leaderboard?order_by=_overall").json()
    assert _overall(body) == [("A", 1, 1.5), ("B", 1, 1.5), ("C", 3, 3.0)]
    assert [r["rank"] for r in body["results"]] == [1, 1, 3]
    _aggregate(world, method="median_rank", labels=["Accuracy", "F1"], splits=["public", "private"])
    body = api(world.host).get(f"/api/v1/phase-splits/{ps.pk}/leaderboard").json()
    # ranks A: acc 1, f1 3, priv acc 2, priv f1 1 → median 1.5; B: 2,2,1,1 → 1.5; C: 3,1,3,1 → 2
    assert _overall(body) == [("A", 1, 1.5), ("B", 1, 1.5), ("C", 3, 2.0)]


def test_rank_aggregation_hidden_from_readers_who_cannot_see_a_split(world):
    world.result("A", 0.9, 0.1, phase="test", private={"Accuracy": 0.5, "F1": 0.5})
    _aggregate(world, method="mean_rank", splits=["public", "private"], sort_by_default=True)
    ps = world.ps("test", "public")
    body = api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard?order_by=Accuracy").json()
    assert body["overall"]["shown"] is False and "private" in body["overall"]["hidden"]
    assert "overall" not in body["results"][0]
    assert api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard").status_code == 403  # sorted by it by default
    private = world.ps("test", "private")
    private.visibility = 3
    private.save()
    body = api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard").json()
    assert body["order_by"] == "_overall" and body["overall"]["shown"] is True


def test_weighted_sum_with_missing_values_last_and_baselines_unranked(world):
    ps = world.ps("test", "public")
    ps.phase.is_partial_submission_evaluation_enabled = True
    ps.phase.save()
    world.result("A", 0.5, 0.5, phase="test")
    world.result("B", 0.9, 0.1, phase="test")
    world.result("C", 0.9, None, phase="test", status="partially_evaluated")
    world.result("H", 1.0, 1.0, phase="test", baseline=True)
    _aggregate(world, method="weighted_sum", weights={"Accuracy": 1, "F1": 2})
    body = api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard?order_by=_overall").json()
    assert [(n, r, None if v is None else round(v, 6)) for n, r, v in _overall(body)] == [
        ("H", None, 3.0),
        ("A", 1, 1.5),
        ("B", 2, 1.1),
        ("C", 3, None),
    ]
    csv_rows = list(
        csv.reader(io.StringIO(streamed(api().get(f"/api/v1/phase-splits/{ps.pk}/leaderboard/export.csv"))))
    )
    assert "Overall rank" in csv_rows[0] and "Overall" in csv_rows[0]


def test_bundle_carries_reveal_at_and_rank_aggregation(media, host_team, tmp_path):
    folder = shutil.copytree(DEMO_BUNDLE, tmp_path / "bundle")
    config_path = folder / "challenge_config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["leaderboard"][0]["schema"]["rank_aggregation"] = {"method": "mean_rank", "labels": ["Accuracy", "F1"]}
    config["challenge_phase_splits"][2]["reveal_at"] = "2099-06-01 12:00:00"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    with read_bundle(folder) as bundle:
        challenge = import_bundle(bundle, host_team=host_team).challenge
    private = challenge.phases.get(codename="test").phase_splits.get(dataset_split__codename="private")
    assert private.reveal_at.isoformat() == "2099-06-01T12:00:00+00:00"
    assert private.leaderboard.schema["rank_aggregation"]["method"] == "mean_rank"

    config["leaderboard"][0]["schema"]["rank_aggregation"] = {"method": "mean_rank", "labels": ["Loss"]}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    with pytest.raises(BundleError) as err:
        read_bundle(folder)
    assert [p.code for p in err.value.errors] == ["bad_value"] and "Loss" in err.value.errors[0].message
