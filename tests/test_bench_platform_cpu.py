"""The benchmark platform's CPU parts (bench/platform_harness.py ``Platform.cpu``): whole clock ticks of one
reading each, never below an earlier reading, so a row's figures are never negative, not even ``-0.0`` (the
smoke rows once printed ``evaluators -0.0``). The readings are scripted: no process is measured for a figure."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SERVER, CHILD, EVALUATOR = 1000, 1001, 1002


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        import measure
        import platform_harness
        import run

        yield SimpleNamespace(harness=platform_harness, measure=measure, run=run)
    finally:
        sys.path.remove(str(BENCH))


def platform(bench, *, worker_process=None, worker_thread=None, tasks_thread=None):
    """A Platform as ``__enter__`` leaves it, without starting anything."""
    p = bench.harness.Platform()
    p.server = SimpleNamespace(pid=SERVER)
    p.worker_process, p.worker_thread, p.tasks_thread = worker_process, worker_thread, tasks_thread
    return p


def scripted(monkeypatch, bench, trees: list[dict], threads: list[dict] | None = None, order: list | None = None):
    """``tree_ticks``/``thread_ticks`` answer the given readings, one per call, in turn."""
    trees, threads = iter(trees), iter(threads or [])

    def tree_ticks(root):
        assert root == SERVER
        if order is not None:
            order.append("tree")
        return next(trees)

    def thread_ticks(pid, tid):
        if order is not None:
            order.append(f"thread {tid}")
        return next(threads)[tid]

    monkeypatch.setattr(bench.harness, "tree_ticks", tree_ticks)
    monkeypatch.setattr(bench.harness, "thread_ticks", thread_ticks)


def positive(value: float) -> bool:
    """Not negative, and not -0.0 either (which compares equal to 0.0)."""
    return value >= 0 and math.copysign(1.0, value) == 1.0


def test_the_parts_are_one_readings_whole_ticks(bench, monkeypatch):
    """Server 30 ticks, the worker's child 20, no evaluator: evaluators is exactly +0.0, where seconds of
    the three subtracted (0.3 - 0.1 - 0.2 in floats) were below zero."""
    ticks = bench.measure.TICKS
    p = platform(bench, worker_process=CHILD)
    scripted(monkeypatch, bench, [{SERVER: (3 * ticks // 10, 0), CHILD: (2 * ticks // 10, 0)}])
    parts = p.cpu()
    assert parts == {"server": (3 * ticks // 10) / ticks, "embedded_worker": (2 * ticks // 10) / ticks, "evaluators": 0}
    assert positive(parts["evaluators"])


def test_evaluators_are_the_other_processes_and_what_was_reaped(bench, monkeypatch):
    p = platform(bench, worker_process=CHILD)
    tree = {SERVER: (50, 7), CHILD: (40, 30), EVALUATOR: (20, 1)}  # (own, reaped children's)
    scripted(monkeypatch, bench, [tree])
    ticks = bench.measure.TICKS
    assert p.cpu() == {"server": 50 / ticks, "embedded_worker": 40 / ticks, "evaluators": (7 + 30 + 20 + 1) / ticks}


def test_thread_mode_reads_the_threads_before_their_process(bench, monkeypatch):
    """A thread read after its process could pass its share of it (the server part below zero)."""
    order: list[str] = []
    p = platform(bench, worker_thread=11, tasks_thread=12)
    scripted(monkeypatch, bench, [{SERVER: (100, 0)}], [{11: 60}, {12: 15}], order)
    ticks = bench.measure.TICKS
    assert p.cpu() == {"server": 25 / ticks, "embedded_worker": 60 / ticks, "task_thread": 15 / ticks, "evaluators": 0}
    assert order == ["thread 11", "thread 12", "tree"]


def test_a_meter_never_reports_a_negative_part(bench, monkeypatch):
    """Between the two readings an evaluator left the tree unreaped (its ticks went with it) and the threads'
    ticks passed the process's by one (the kernel rounds each to ticks on its own): every figure of the row,
    per submission and as printed, is still zero or more, and no zero is -0.0."""
    p = platform(bench, worker_thread=11, tasks_thread=12)
    trees = [{SERVER: (100, 0), EVALUATOR: (9, 0)}, {SERVER: (100, 0)}]
    threads = [{11: 60}, {12: 40}, {11: 61}, {12: 40}]
    scripted(monkeypatch, bench, trees, threads)
    meter = bench.measure.CpuMeter(p.cpu).start()
    used = meter.stop()
    assert all(positive(v) for v in used.values()), used
    per = meter.per_item_ms(10)
    assert all(positive(v) for k, v in per.items() if k != "load_average"), per
    assert per["server"] == per["evaluators"] == per["task_thread"] == 0
    assert per["embedded_worker"] == round(1000 * (1 / bench.measure.TICKS) / 10, 2)  # its one tick
    text = bench.run.cpu_text({"cpu_ms_per_submission": per})
    assert "-" not in text, text


def test_a_part_keeps_its_highest_reading(bench, monkeypatch):
    p = platform(bench, worker_process=CHILD)
    trees = [{SERVER: (10, 0), CHILD: (10, 0), EVALUATOR: (30, 0)}, {SERVER: (12, 0), CHILD: (10, 0)}]
    trees.append({SERVER: (12, 0), CHILD: (10, 0), EVALUATOR: (35, 0)})
    scripted(monkeypatch, bench, trees)
    ticks = bench.measure.TICKS
    assert [p.cpu()["evaluators"] for _ in range(3)] == [30 / ticks, 30 / ticks, 35 / ticks]


def test_the_real_tree_of_this_process(bench):
    """The /proc readers on a live process: this test's own, as a server with no worker or evaluator."""
    p = bench.harness.Platform()
    p.server = SimpleNamespace(pid=os.getpid())
    p.worker_process = p.worker_thread = p.tasks_thread = None
    parts = p.cpu()
    assert set(parts) == {"server", "evaluators"} and parts["server"] > 0 and positive(parts["evaluators"])
    again = p.cpu()
    assert again["server"] >= parts["server"] and again["evaluators"] >= parts["evaluators"]
