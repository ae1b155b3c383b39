"""Chunks on a Dask distributed cluster: each Dask worker runs them in its own sandboxed pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.evaluation import ChunkingSpec, EvaluatorPool

from .test_chunked import _dataset, _job

distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # The Dask worker processes inherit this: their pools cache scripts and inputs in the test's folder.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSAY_DASK_WORKDIR", str(tmp_path_factory.mktemp("dask-workers")))
        with distributed.LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40
        ) as c:
            yield c


def test_chunks_on_dask_equal_plain_evaluate(tmp_path: Path, cluster) -> None:
    script, annotation, submission = _dataset(tmp_path, 20_000, "json")
    with EvaluatorPool(workdir=tmp_path / "local", parallelism=2) as plain_pool:
        plain = plain_pool.evaluate(_job(script, annotation, submission, None))
    assert plain.ok, plain
    with EvaluatorPool(workdir=tmp_path / "work", parallelism=4, dask_scheduler=cluster.scheduler_address) as pool:
        chunked = pool.evaluate(_job(script, annotation, submission, ChunkingSpec()))
        assert chunked.ok, chunked
        assert chunked.chunks == 4
        assert chunked.output["result"] == plain.output["result"]
        # Only the merging evaluator runs here; the chunks ran in the Dask workers' own evaluators.
        assert pool.warm_count() == 1
        assert "chunks on Dask workers" in chunked.sandbox
        if pool.report.usable:  # the Dask workers sandbox their chunks exactly as the local pool does
            assert chunked.sandbox.count("bwrap (") == 2
        processes = chunked.output["submission_result"]["processes"]
        assert 1 <= len(processes) <= 2  # one warm evaluator per Dask worker, reused across chunks
        again = pool.evaluate(_job(script, annotation, submission, ChunkingSpec()))
        assert again.output["result"] == plain.output["result"]
        assert set(again.output["submission_result"]["processes"]) <= set(processes)  # still warm there


def test_the_script_and_annotation_go_once_to_each_machine(tmp_path: Path, cluster) -> None:
    """They were broadcast with every evaluation; a machine keeps them on disk by sha256, so only a
    worker that lacks them (here: after its folder was emptied) is sent them again."""
    import os
    import shutil

    script, annotation, submission = _dataset(tmp_path, 2_000, "json")
    with EvaluatorPool(workdir=tmp_path / "work", parallelism=2, dask_scheduler=cluster.scheduler_address) as pool:
        first = pool.evaluate(_job(script, annotation, submission, ChunkingSpec()))
        assert first.ok, first
        client, sent = pool._dask_client, []
        run = client.run

        def recording_run(function, *args, **kwargs):
            sent.append((function.__name__, sorted(kwargs.get("workers") or [])))
            return run(function, *args, **kwargs)

        client.run = recording_run
        again = pool.evaluate(_job(script, annotation, submission, ChunkingSpec()))
        assert again.ok and again.output["result"] == first.output["result"]
        assert [name for name, _ in sent] == ["holds_inputs"]
        shutil.rmtree(Path(os.environ["ASSAY_DASK_WORKDIR"]) / "inputs")
        sent.clear()
        third = pool.evaluate(_job(script, annotation, submission, ChunkingSpec()))
        assert third.ok and third.output["result"] == first.output["result"]
        workers = sorted(cluster.scheduler.workers)
        assert sent == [("holds_inputs", []), ("store_inputs", workers)]


def test_dask_chunk_failures_are_reported(tmp_path: Path, cluster) -> None:
    script, annotation, _ = _dataset(tmp_path, 100, "json")
    submission = tmp_path / "poisoned.json"
    submission.write_text('{"img000001": "a", "fail": "a"}')
    with EvaluatorPool(workdir=tmp_path / "work", dask_scheduler=cluster.scheduler_address) as pool:
        outcome = pool.evaluate(_job(script, annotation, submission, ChunkingSpec(chunk_count=2)))
    assert outcome.error_kind == "script_error"
    assert outcome.error == "chunk 2 of 2: evaluate_chunk() raised ValueError: chunk holds a poisoned row"


def test_unreachable_scheduler_is_a_setup_error(tmp_path: Path) -> None:
    script, annotation, submission = _dataset(tmp_path, 100, "json")
    with EvaluatorPool(workdir=tmp_path / "work", dask_scheduler="tcp://127.0.0.1:9") as pool:
        pool._dask_connect_timeout = 2
        outcome = pool.evaluate(_job(script, annotation, submission, ChunkingSpec(chunk_count=2)))
    assert outcome.error_kind == "setup"
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:9" in outcome.error
