"""Benchmarks of the evaluation engine itself (``assay.evaluation.EvaluatorPool``, what every worker runs).

* ``warm``: a host script whose annotation file is large (generated JSON), many small submissions.
  Baselines in the same run: *cold* — a fresh interpreter per submission that imports the script and
  parses the annotations (what a worker without warm evaluators pays), and *EvalAI's mode* — one
  process that imported the script once but whose ``evaluate()`` re-parses the annotations for every
  submission (EvalAI's worker, ``reference/evalai.md`` §5.1). Both baselines run unsandboxed, which
  favours them.
* ``chunked``: one submission of N predictions scored with a decomposable metric that is genuinely
  expensive per item (character error rate: a Levenshtein distance per item, summed edits over summed
  reference characters), plain vs chunked on the local cores vs chunked on a local Dask cluster.
  The machine is shared, so each run also records the CPU time of the whole process tree and the
  chunked run's CPU per stage; ``cpu_speedup`` is the speed-up those CPU figures give on idle cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from assay.evaluation import ChunkingSpec, EvaluationJob, EvaluationLimits, EvaluatorPool
from assay.evaluation.evaluator import _tree_cpu_seconds

LIMITS = EvaluationLimits(wall_seconds=1800, cpu_seconds=1800, memory_bytes=8 * 1024**3)

WARM_SCRIPT = """
import json


def _load(path):
    with open(path) as fh:
        return json.load(fh)


def warm_up(test_annotation_file, phase_codename):
    return _load(test_annotation_file)


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    truth = kwargs.get("warm_state")
    if truth is None:  # no warm evaluator: parse the annotations now (EvalAI's way)
        truth = _load(test_annotation_file)
    predictions = _load(user_submission_file)
    hits = sum(1 for k, v in predictions.items() if truth.get(k) == v)
    return {"result": [{"test": {"accuracy": hits / len(predictions)}}]}
"""

CER_SCRIPT = """
import json


def warm_up(test_annotation_file, phase_codename):
    with open(test_annotation_file) as fh:
        return json.load(fh)


def _levenshtein(a, b):
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _score(truth, path):
    with open(path) as fh:
        predictions = json.load(fh)
    edits = chars = 0
    for key, hypothesis in predictions.items():
        reference = truth[key]
        edits += _levenshtein(reference, hypothesis)
        chars += len(reference)
    return [edits, chars]


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    edits, chars = _score(kwargs["warm_state"], user_submission_file)
    return {"result": [{"test": {"CER": edits / chars}}]}


def evaluate_chunk(test_annotation_file, chunk_file, phase_codename, **kwargs):
    return _score(kwargs["warm_state"], chunk_file)


def merge_chunks(partials, phase_codename, **kwargs):
    edits = sum(p[0] for p in partials)
    chars = sum(p[1] for p in partials)
    return {"result": [{"test": {"CER": edits / chars}}]}
"""


def _zip(root: Path, name: str, source: str) -> Path:
    path = root / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__init__.py", source)
    return path


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def warm(annotation_mb: int = 100, submissions: int = 50, cold_runs: int = 5, sandbox: str = "auto") -> dict:
    with tempfile.TemporaryDirectory(prefix="assay-bench-warm-") as tmp:
        root = Path(tmp)
        script = _zip(root, "warm", WARM_SCRIPT)
        (root / "pkg" / "warmscript").mkdir(parents=True)
        (root / "pkg" / "warmscript" / "__init__.py").write_text(WARM_SCRIPT)
        rng = random.Random(7)
        ann = root / "annotations.json"
        target = annotation_mb * 1024 * 1024
        keys: list[str] = []
        with ann.open("w") as fh:  # {"item0000000": label, ...} up to the size asked for
            fh.write("{")
            written, n = 1, 0
            while written < target:
                key = f"item{n:08d}"
                piece = f'{"," if n else ""}"{key}": {rng.randrange(10)}'
                fh.write(piece)
                written += len(piece)
                if n % 50 == 0:
                    keys.append(key)
                n += 1
            fh.write("}")
        items = n
        subs = []
        for s in range(submissions):
            path = root / f"sub{s}.json"
            path.write_text(json.dumps({k: rng.randrange(10) for k in rng.sample(keys, min(1000, len(keys)))}))
            subs.append(path)

        # baseline 1, cold: a fresh interpreter per submission imports the script and parses the annotations
        cold = []
        code = "import sys; sys.path.insert(0, sys.argv[1]); import warmscript; warmscript.evaluate(*sys.argv[2:4], 'test')"  # noqa: E501
        for path in subs[:cold_runs]:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code, str(root / "pkg"), str(ann), str(path)], check=True)
            cold.append(time.perf_counter() - t)

        # baseline 2, EvalAI's mode: imported once, annotations parsed by every evaluate() call
        loop = (
            "import sys, time, json; sys.path.insert(0, sys.argv[1]); import warmscript\n"
            "out = []\n"
            "for sub in sys.argv[3:]:\n"
            "    t = time.perf_counter(); warmscript.evaluate(sys.argv[2], sub, 'test'); out.append(time.perf_counter() - t)\n"  # noqa: E501
            "print(json.dumps(out))\n"
        )
        answer = subprocess.run([sys.executable, "-c", loop, str(root / "pkg"), str(ann), *map(str, subs[:cold_runs])],
                                check=True, capture_output=True, text=True)  # fmt: skip
        evalai = json.loads(answer.stdout)

        # Assay: a warm evaluator (sandboxed) that ran warm_up() once
        with EvaluatorPool(workdir=root / "work", sandbox=sandbox) as pool:
            t0 = time.perf_counter()
            durations = []
            first = None
            for path in subs:
                t = time.perf_counter()
                outcome = pool.evaluate(EvaluationJob("warm", script, ann, path, "test", {}, LIMITS))
                assert outcome.ok, outcome.error
                if first is None:
                    first = time.perf_counter() - t
                else:
                    durations.append(time.perf_counter() - t)
            total = time.perf_counter() - t0
            used = pool.sandbox
        warm_p50 = statistics.median(durations)
        cold_p50 = statistics.median(cold)
        evalai_p50 = statistics.median(evalai)
        return {
            "annotation_mb": round(ann.stat().st_size / 2**20, 1),
            "annotation_items": items,
            "submissions": submissions,
            "sandbox": str(used),
            "warm_first_s": round(first, 3),
            "warm_p50_ms": round(warm_p50 * 1000, 2),
            "warm_p95_ms": round(pct(durations, 0.95) * 1000, 2),
            "warm_total_s": round(total, 2),
            "cold_runs": len(cold),
            "cold_p50_s": round(cold_p50, 3),
            "evalai_mode_p50_s": round(evalai_p50, 3),
            "ratio_cold_over_warm": round(cold_p50 / warm_p50, 1),
            "ratio_evalai_over_warm": round(evalai_p50 / warm_p50, 1),
            "ratio_total_cold_over_warm": round(cold_p50 * submissions / total, 1),
            "target": "warm >= 10x cold (per submission)",
            "meets_target": cold_p50 / warm_p50 >= 10,
        }


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase[:12]) for _ in range(rng.randint(5, 8)))


def _typo(rng: random.Random, word: str) -> str:
    w = list(word)
    for _ in range(rng.randint(0, 2)):
        i = rng.randrange(len(w))
        w[i] = rng.choice(string.ascii_lowercase[:12])
    return "".join(w)


def machine() -> dict:
    """The CPU model, cores and load average: figures from a shared machine mean little without them."""
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    return {"cpu": model, "cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}


def _tree_cpu() -> float:
    """CPU seconds of this process and every process under it (evaluators, the splitter, Dask workers)."""
    return _tree_cpu_seconds(os.getpid())


def chunk_speedup_from_cpu(plain_cpu: float, stages: dict, cores: int) -> dict:
    """What the chunked run would take on ``cores`` idle cores, from the CPU each stage used.

    The split and the merge are serial; the chunks run on ``min(cores, evaluators)`` cores, so they take
    at least the busiest evaluator's CPU and at least all chunk CPU (plus the overlapped check of the
    cut) divided by the cores. Unchunked, the one evaluator's CPU is its wall time on an idle core.
    """
    chunk_cpu = stages["chunk_cpu_s"]
    serial = stages["split_cpu_s"] + stages.get("merge_cpu_s", 0.0)
    parallel = max(max(chunk_cpu), (sum(chunk_cpu) + stages.get("check_cpu_s", 0.0)) / min(cores, len(chunk_cpu)))
    return {
        "serial_cpu_s": round(serial, 3),
        "serial_fraction": round(serial / plain_cpu, 4),
        "idle_estimate_s": round(serial + parallel, 2),
        "cpu_speedup": round(plain_cpu / (serial + parallel), 2),
    }


def chunked(items: int = 1_000_000, dask: bool = True, sandbox: str = "auto", repeats: int = 1) -> dict:
    """Plain vs chunked, ``repeats`` times each, interleaved (so load changes hit both); medians reported."""
    with tempfile.TemporaryDirectory(prefix="assay-bench-chunked-") as tmp:
        root = Path(tmp)
        script = _zip(root, "cer", CER_SCRIPT)
        rng = random.Random(11)
        truth = {f"line{i:07d}": _word(rng) for i in range(items)}
        ann = root / "references.json"
        ann.write_text(json.dumps(truth))
        sub = root / "transcripts.json"
        sub.write_text(json.dumps({k: _typo(rng, v) for k, v in truth.items()}))
        small = root / "small.json"
        small.write_text(json.dumps(dict(list({k: v for k, v in truth.items()}.items())[:200])))
        del truth

        def job(path: Path, chunking: ChunkingSpec | None = None) -> EvaluationJob:
            return EvaluationJob("cer", script, ann, path, "test", {}, LIMITS, chunking)

        def timed(pool: EvaluatorPool, path: Path, chunking: ChunkingSpec | None) -> dict:
            time.sleep(0.5)  # the previous run's background work (the next split process starting) ends first
            load = os.getloadavg()[0]
            cpu = _tree_cpu()
            t = time.perf_counter()
            outcome = pool.evaluate(job(path, chunking))
            wall = time.perf_counter() - t
            assert outcome.ok, outcome.error
            return {"wall_s": wall, "cpu_s": _tree_cpu() - cpu, "load": load, "outcome": outcome}

        result: dict = {"items": items, "submission_mb": round(sub.stat().st_size / 2**20, 1),
                        "metric": "CER (Levenshtein per item; sums of edits and reference characters)",
                        "machine": machine()}  # fmt: skip
        plains, chunks = [], []
        with EvaluatorPool(workdir=root / "work", sandbox=sandbox) as pool:
            result["sandbox"] = str(pool.sandbox)
            result["parallelism"] = pool.parallelism
            timed(pool, small, None)  # start the evaluator and run warm_up()
            timed(pool, small, ChunkingSpec())  # start the extra evaluators
            for _ in range(repeats):
                plains.append(timed(pool, sub, None))
                chunks.append(timed(pool, sub, ChunkingSpec()))
                out, plain = chunks[-1]["outcome"].output, plains[-1]["outcome"].output
                assert out["result"] == plain["result"], (out, plain)
        cores = result["parallelism"]
        runs = []
        for p, c in zip(plains, chunks, strict=True):
            runs.append({"plain_s": round(p["wall_s"], 2), "plain_cpu_s": round(p["cpu_s"], 2),
                         "chunked_s": round(c["wall_s"], 2), "chunked_cpu_s": round(c["cpu_s"], 2),
                         "speedup": round(p["wall_s"] / c["wall_s"], 2), "load_avg_1m": round(p["load"], 2),
                         **chunk_speedup_from_cpu(p["cpu_s"], c["outcome"].stages, cores),
                         "stages": c["outcome"].stages})  # fmt: skip
        middle = sorted(runs, key=lambda r: r["cpu_speedup"])[len(runs) // 2]
        result.update(
            plain_s=round(statistics.median(r["wall_s"] for r in plains), 2),
            chunked_s=round(statistics.median(r["wall_s"] for r in chunks), 2),
            speedup=round(statistics.median(r["speedup"] for r in runs), 2),
            cer=plain["result"][0]["test"]["CER"],
            plain_cpu_s=round(statistics.median(r["cpu_s"] for r in plains), 2),
            chunked_cpu_s=round(statistics.median(r["cpu_s"] for r in chunks), 2),
            chunks=chunks[-1]["outcome"].chunks,
            cpu_speedup=middle["cpu_speedup"],
            stages=middle["stages"],
            serial_fraction=middle["serial_fraction"],
            idle_estimate_s=middle["idle_estimate_s"],
            runs=runs,
        )
        result["machine"]["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
        if dask:
            try:
                from distributed import LocalCluster
            except ImportError:
                result["dask"] = "not installed (pip install 'assay[dask]')"
            else:
                workers = os.cpu_count() or 2
                with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:  # fmt: skip
                    with EvaluatorPool(workdir=root / "work-dask", sandbox=sandbox,
                                       dask_scheduler=cluster.scheduler_address) as pool:  # fmt: skip
                        timed(pool, small, None)
                        first = timed(pool, small, ChunkingSpec())  # starts the Dask workers' evaluators
                        run = timed(pool, sub, ChunkingSpec())
                        assert run["outcome"].output["result"] == plain["result"]
                result["dask"] = {"workers": workers, "start_s": round(first["wall_s"], 2),
                                  "warm_s": round(run["wall_s"], 2), "cpu_s": round(run["cpu_s"], 2),
                                  "speedup": round(result["plain_s"] / run["wall_s"], 2)}  # fmt: skip
        result["target"] = ">= 1.8x on 2 cores (judged on CPU accounting: the machine is shared)"
        result["meets_target"] = result["cpu_speedup"] >= 1.8
        result["meets_target_wall"] = result["speedup"] >= 1.8
        return result


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "warm"
    if which == "warm":
        print(json.dumps(warm(int(sys.argv[2]) if len(sys.argv) > 2 else 10, 10, 2), indent=2))
    else:
        size = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
        repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 1
        print(json.dumps(chunked(size, dask="--no-dask" not in sys.argv, repeats=repeats), indent=2, default=str))
