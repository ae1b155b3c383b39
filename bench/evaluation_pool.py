"""Quick numbers for the evaluation pool: cold start, warm latency, chunked vs plain on 10^6 items.

.venv/bin/python bench/evaluation_pool.py [--items 1000000] [--sandbox auto|bwrap|none]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from assay.evaluation import ChunkingSpec, EvaluationJob, EvaluationLimits, EvaluatorPool
from assay.evaluation.chunking import cut_submission
from assay.evaluation.pool import CHUNKS_PER_EVALUATOR

SCRIPT = """
import json


def warm_up(test_annotation_file, phase_codename):
    with open(test_annotation_file) as fh:
        return json.load(fh)


def _hits(truth, path):
    with open(path) as fh:
        predictions = json.load(fh)
    return sum(1 for k, v in predictions.items() if truth.get(k) == v), len(predictions)


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    truth = kwargs["warm_state"]
    hits, _ = _hits(truth, user_submission_file)
    return {"result": [{"test": {"accuracy": hits / len(truth)}}]}


def evaluate_chunk(test_annotation_file, chunk_file, phase_codename, **kwargs):
    hits, seen = _hits(kwargs["warm_state"], chunk_file)
    return [hits, seen]


def merge_chunks(partials, phase_codename, **kwargs):
    return {"result": [{"test": {"accuracy": sum(p[0] for p in partials) / len(kwargs["warm_state"])}}]}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--sandbox", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        script = root / "script.zip"
        with zipfile.ZipFile(script, "w") as zf:
            zf.writestr("__init__.py", SCRIPT)
        rng = random.Random(1)
        truth = {f"id{i}": rng.randrange(10) for i in range(args.items)}
        (root / "ann.json").write_text(json.dumps(truth))
        (root / "sub.json").write_text(json.dumps({k: (v if rng.random() < 0.8 else -1) for k, v in truth.items()}))
        small = root / "small.json"
        small.write_text(json.dumps(dict(list(truth.items())[:100])))
        limits = EvaluationLimits(wall_seconds=600, cpu_seconds=600, memory_bytes=4 * 1024**3)

        def job(sub: Path, chunking: ChunkingSpec | None = None) -> EvaluationJob:
            return EvaluationJob("bench", script, root / "ann.json", sub, "test", {}, limits, chunking)

        with EvaluatorPool(workdir=root / "work", sandbox=args.sandbox) as pool:
            print("sandbox:", pool.sandbox, file=sys.stderr)
            cold = pool.evaluate(job(small))
            print(f"cold start + warm_up({args.items} items) + 1 small evaluation: {cold.duration:.3f} s")
            warm = [pool.evaluate(job(small)).duration for _ in range(20)]
            print(f"warm small evaluation: median {statistics.median(warm) * 1000:.1f} ms")
            t = time.monotonic()
            plain = pool.evaluate(job(root / "sub.json"))
            print(f"plain evaluate of {args.items} items: {time.monotonic() - t:.3f} s")
            for _ in range(2):  # the first chunked run also starts the extra evaluators
                t = time.monotonic()
                chunked = pool.evaluate(job(root / "sub.json", ChunkingSpec()))
                print(f"chunked ({chunked.chunks} chunks, warm={chunked.warm}): {time.monotonic() - t:.3f} s")
                stages = chunked.stages or {}
                print(
                    f"  split {stages.get('split_s', 0):.3f} s wall / {stages.get('split_cpu_s', 0):.3f} s CPU;"
                    f" chunks {stages.get('chunks_s', 0):.3f} s wall, CPU per evaluator {stages.get('chunk_cpu_s')}"
                    f" ({stages.get('chunks_per_evaluator')} chunks, {stages.get('evaluators_started')} started);"
                    f" cut checked with {stages.get('check_cpu_s', 0):.3f} s CPU meanwhile;"
                    f" merge {stages.get('merge_s', 0):.3f} s; split process started ahead:"
                    f" {stages.get('split_started_ahead')}"
                )
            assert chunked.output["result"] == plain.output["result"], (chunked, plain)
            t = time.monotonic()
            cut = cut_submission(root / "sub.json", pool.parallelism * CHUNKS_PER_EVALUATOR, root / "split")
            cutting = time.monotonic() - t
            t = time.monotonic()
            assert cut.verify()
            print(
                f"cutting the JSON object into {len(cut.parts)} files in this process: {cutting:.3f} s,"
                f" checking the cut: {time.monotonic() - t:.3f} s"
            )


if __name__ == "__main__":
    main()
