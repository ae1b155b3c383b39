"""Chunked evaluation: split, evaluate in parallel warm processes, merge; equal to the plain result."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
from pathlib import Path

import pytest

from assay.evaluation import ChunkingSpec, EvaluationJob, EvaluationLimits, EvaluatorPool
from assay.evaluation.pool import CHUNKS_PER_EVALUATOR

from .conftest import make_zip

N_ITEMS = 100_000

CHUNKED_SCRIPT = {
    "__init__.py": "from .main import evaluate, evaluate_chunk, merge_chunks, warm_up\n",
    "main.py": """
        import csv
        import json
        import os
        import time
        import uuid

        from .loading import load_predictions


        def warm_up(test_annotation_file, phase_codename):
            with open(test_annotation_file) as fh:
                truth = json.load(fh)
            return {"truth": truth, "process": uuid.uuid4().hex}


        def _counts(truth, predictions):
            hits = sum(1 for key, label in predictions.items() if truth.get(key) == label)
            return hits, len(predictions)


        def _result(truth, hits, seen):
            return {"result": [{"test": {"accuracy": hits / len(truth), "coverage": seen / len(truth)}}]}


        def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
            truth = kwargs["warm_state"]["truth"]
            hits, seen = _counts(truth, load_predictions(user_submission_file))
            return _result(truth, hits, seen)


        def evaluate_chunk(test_annotation_file, chunk_file, phase_codename, **kwargs):
            state = kwargs["warm_state"]
            predictions = load_predictions(chunk_file)
            if "fail" in predictions:
                raise ValueError("chunk holds a poisoned row")
            time.sleep(kwargs["submission_metadata"].get("pause", 0))
            hits, seen = _counts(state["truth"], predictions)
            print(f"chunk of {seen} rows")
            return {"hits": hits, "seen": seen, "process": state["process"]}


        def merge_chunks(partials, phase_codename, **kwargs):
            truth = kwargs["warm_state"]["truth"]
            out = _result(truth, sum(p["hits"] for p in partials), sum(p["seen"] for p in partials))
            out["submission_result"] = {
                "chunks": len(partials),
                "processes": sorted({p["process"] for p in partials}),
                "team": kwargs["submission_metadata"]["team"],
            }
            return out
    """,
    "loading.py": """
        import csv
        import json


        def load_predictions(path):
            if path.endswith(".csv"):
                with open(path, newline="") as fh:
                    return {row["id"]: row["label"] for row in csv.DictReader(fh)}
            if path.endswith(".jsonl"):
                with open(path) as fh:
                    rows = [json.loads(line) for line in fh if line.strip()]
                return {row["id"]: row["label"] for row in rows}
            with open(path) as fh:
                data = json.load(fh)
            if isinstance(data, list):
                return {row["id"]: row["label"] for row in data}
            return data
    """,
}


def _dataset(folder: Path, n: int, fmt: str) -> tuple[Path, Path, Path]:
    rng = random.Random(42)
    truth = {f"img{i:06d}": rng.choice("abc") for i in range(n)}
    preds = {k: (v if rng.random() < 0.7 else "x") for k, v in truth.items()}
    folder.mkdir(parents=True, exist_ok=True)
    script = make_zip(folder, CHUNKED_SCRIPT)
    annotation = folder / "annotations.json"
    annotation.write_text(json.dumps(truth))
    if fmt == "json":
        submission = folder / "submission.json"
        submission.write_text(json.dumps(preds))
    elif fmt == "json-list":
        submission = folder / "submission.json"
        submission.write_text(json.dumps([{"id": k, "label": v} for k, v in preds.items()]))
    elif fmt == "jsonl":
        submission = folder / "submission.jsonl"
        submission.write_text("".join(json.dumps({"id": k, "label": v}) + "\n" for k, v in preds.items()))
    else:
        submission = folder / "submission.csv"
        with submission.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "label"])
            for i, (k, v) in enumerate(preds.items()):
                writer.writerow([k, v if i % 7 else f'{v}, "quoted"'])  # quoted fields in places
    return script, annotation, submission


def _job(script: Path, annotation: Path, submission: Path, chunking: ChunkingSpec | None) -> EvaluationJob:
    return EvaluationJob(
        key=f"{script}:{annotation}",
        script_zip=script,
        annotation_file=annotation,
        submission_file=submission,
        phase_codename="test",
        submission_metadata={"team": "blue"},
        limits=EvaluationLimits(wall_seconds=60, cpu_seconds=60, memory_bytes=1024**3),
        chunking=chunking,
    )


def test_chunked_accuracy_over_1e5_items_equals_plain_evaluate(tmp_path: Path) -> None:
    script, annotation, submission = _dataset(tmp_path, N_ITEMS, "json")
    with EvaluatorPool(workdir=tmp_path / "work", parallelism=3, max_warm=4) as pool:
        plain = pool.evaluate(_job(script, annotation, submission, None))
        assert plain.ok, plain
        chunked = pool.evaluate(_job(script, annotation, submission, ChunkingSpec()))
        assert chunked.ok, chunked
        assert chunked.chunks == 3 * CHUNKS_PER_EVALUATOR  # more chunks than evaluators, by default
        assert chunked.output["result"] == plain.output["result"]
        assert 0.6 < plain.output["result"][0]["test"]["accuracy"] < 0.8
        info = chunked.output["submission_result"]
        assert info["chunks"] == 3 * CHUNKS_PER_EVALUATOR and info["team"] == "blue"
        stages = chunked.stages
        assert stages["evaluators_started"] == 2  # the two helpers, started while the file was cut
        assert sum(stages["chunks_per_evaluator"]) == 3 * CHUNKS_PER_EVALUATOR and len(stages["chunk_cpu_s"]) == 3
        assert stages["split_cpu_s"] > 0 and stages["chunk_cpu_s"][0] > 0
        assert f"----- chunk {chunked.chunks}/{chunked.chunks} -----\nchunk of " in chunked.stdout
        assert pool.warm_count(plain_key := f"{script}:{annotation}") == 3
        again = pool.evaluate(_job(script, annotation, submission, ChunkingSpec(chunk_count=2)))
        assert again.ok and again.warm and again.chunks == 2
        assert again.output["result"] == plain.output["result"]
        assert again.stages["evaluators_started"] == 0
        assert pool.warm_count(plain_key) == 3  # reused, not restarted


def test_warm_evaluators_share_the_chunks(tmp_path: Path) -> None:
    script, annotation, submission = _dataset(tmp_path, 3_000, "json")
    with EvaluatorPool(workdir=tmp_path / "work", parallelism=3, max_warm=4) as pool:
        first = pool.evaluate(_job(script, annotation, submission, ChunkingSpec()))  # starts the helpers
        assert first.ok, first
        # Each chunk now takes 0.2 s, so every warm evaluator takes some of the twelve.
        job = dataclasses.replace(
            _job(script, annotation, submission, ChunkingSpec()), submission_metadata={"team": "blue", "pause": 0.2}
        )
        outcome = pool.evaluate(job)
        assert outcome.ok, outcome
        assert len(outcome.output["submission_result"]["processes"]) == 3
        assert all(n > 0 for n in outcome.stages["chunks_per_evaluator"])
        assert outcome.output["result"] == first.output["result"]


def test_a_key_in_two_chunks_is_scored_as_the_whole_file_scores_it(tmp_path: Path) -> None:
    """The whole file's parse keeps the last value of a key; a cut that puts the key in two chunks
    would score it twice (hits and coverage both change), so that cut is refused and the file is
    evaluated whole."""
    script, annotation, _ = _dataset(tmp_path, 2_000, "json")
    truth = json.loads(annotation.read_text())
    body = ", ".join(f'"{k}": "{v}"' for k, v in truth.items())
    submission = tmp_path / "twice.json"
    submission.write_text("{" + body + ', "img000000": "wrong"}')  # first occurrence right, last wrong
    with EvaluatorPool(workdir=tmp_path / "work", parallelism=2) as pool:
        plain = pool.evaluate(_job(script, annotation, submission, None))
        chunked = pool.evaluate(_job(script, annotation, submission, ChunkingSpec(chunk_count=4)))
    assert plain.ok and chunked.ok, (plain, chunked)
    assert plain.output["result"] == [{"test": {"accuracy": (len(truth) - 1) / len(truth), "coverage": 1.0}}]
    assert chunked.output["result"] == plain.output["result"]
    assert chunked.chunks is None


def test_malformed_json_reports_the_scripts_own_error(tmp_path: Path) -> None:
    script, annotation, _ = _dataset(tmp_path, 1_000, "json")
    rows = ", ".join(f'"img{i:06d}": "a"' for i in range(1_000))
    submission = tmp_path / "broken.json"
    submission.write_text("{" + rows.replace(', "img000500"', ' "img000500"') + "}")  # one comma missing
    with EvaluatorPool(workdir=tmp_path / "work", parallelism=2) as pool:
        plain = pool.evaluate(_job(script, annotation, submission, None))
        chunked = pool.evaluate(_job(script, annotation, submission, ChunkingSpec(chunk_count=4)))
    assert not plain.ok and plain.error_kind == "script_error"
    assert plain.error.startswith("evaluate() raised JSONDecodeError: Expecting ',' delimiter")
    assert (chunked.ok, chunked.error, chunked.chunks) == (False, plain.error, None)


@pytest.mark.parametrize("fmt", ["json-list", "jsonl", "csv"])
def test_chunked_formats_equal_plain_evaluate(tmp_path: Path, fmt: str) -> None:
    script, annotation, submission = _dataset(tmp_path, 5_000, fmt)
    with EvaluatorPool(workdir=tmp_path / "work", parallelism=2) as pool:
        plain = pool.evaluate(_job(script, annotation, submission, None))
        chunked = pool.evaluate(_job(script, annotation, submission, ChunkingSpec(chunk_count=3)))
        assert plain.ok and chunked.ok, (plain, chunked)
        assert chunked.chunks == 3
        assert chunked.output["result"] == plain.output["result"]
        assert plain.output["result"][0]["test"]["coverage"] == 1.0


def test_small_submissions_and_plain_scripts_skip_chunking(tmp_path: Path) -> None:
    script, annotation, submission = _dataset(tmp_path, 1_000, "json")
    with EvaluatorPool(workdir=tmp_path / "work", parallelism=2) as pool:
        small = pool.evaluate(_job(script, annotation, submission, ChunkingSpec(min_bytes=10**9)))
        assert small.ok and small.chunks is None
        plain_script = make_zip(
            tmp_path / "plain",
            {
                "__init__.py": CHUNKED_SCRIPT["__init__.py"].replace(
                    "from .main import evaluate, evaluate_chunk, merge_chunks, warm_up",
                    "from .main import evaluate, warm_up",
                ),
                "main.py": CHUNKED_SCRIPT["main.py"],
                "loading.py": CHUNKED_SCRIPT["loading.py"],
            },
        )
        job = dataclasses.replace(_job(plain_script, annotation, submission, ChunkingSpec()), key="plain")
        outcome = pool.evaluate(job)
        assert outcome.ok and outcome.chunks is None


def test_a_failing_chunk_fails_the_evaluation_with_its_reason(tmp_path: Path) -> None:
    script, annotation, _ = _dataset(tmp_path, 100, "json")
    submission = tmp_path / "poisoned.json"
    rows = {f"img{i:06d}": "a" for i in range(100)}
    rows["fail"] = "a"  # lands in the last chunk
    submission.write_text(json.dumps(rows))
    with EvaluatorPool(workdir=tmp_path / "work", parallelism=2) as pool:
        outcome = pool.evaluate(_job(script, annotation, submission, ChunkingSpec(chunk_count=3)))
        assert not outcome.ok
        assert outcome.error_kind == "script_error"
        assert outcome.error == "chunk 3 of 3: evaluate_chunk() raised ValueError: chunk holds a poisoned row"
        assert "Traceback" in outcome.stderr


def test_a_helper_that_cannot_start_leaves_its_chunks_to_the_others(tmp_path: Path) -> None:
    script, annotation, submission = _dataset(tmp_path, 2_000, "json")
    with EvaluatorPool(workdir=tmp_path / "work", parallelism=2) as pool:
        plain = pool.evaluate(_job(script, annotation, submission, None))
        acquire, calls = pool._acquire, []

        def first_only(spec, handle=None):  # the job's own evaluator is warm; the extra one fails to start
            calls.append(spec)
            if len(calls) > 1:
                raise OSError("no room for another sandbox")
            return acquire(spec, handle)

        pool._acquire = first_only  # type: ignore[method-assign]
        chunked = pool.evaluate(_job(script, annotation, submission, ChunkingSpec()))
    assert chunked.ok, chunked
    assert chunked.output["result"] == plain.output["result"]
    assert chunked.stages["chunks_per_evaluator"] == [2 * CHUNKS_PER_EVALUATOR, 0] and len(calls) == 2


def test_the_next_split_process_waits_started_and_ends_with_the_pool(tmp_path: Path) -> None:
    script, annotation, submission = _dataset(tmp_path, 2_000, "json")
    with EvaluatorPool(workdir=tmp_path / "work", parallelism=2) as pool:
        first = pool.evaluate(_job(script, annotation, submission, ChunkingSpec()))
        spare = pool._spare_splitter
        assert first.ok and spare is not None and spare.poll() is None
        second = pool.evaluate(_job(script, annotation, submission, ChunkingSpec()))
        assert second.ok and second.output["result"] == first.output["result"]
        assert spare.poll() is not None  # it cut the second submission and was reaped
        assert (first.stages["split_started_ahead"], second.stages["split_started_ahead"]) == (False, True)
        assert second.stages["split_cpu_s"] > 0  # the cut's own CPU, not the interpreter's start
        last = pool._spare_splitter
        assert last is not None and last is not spare
    assert last.poll() is not None
