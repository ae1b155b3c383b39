"""The throughput row's submit client (bench/submit_client.py): it sends what httpx sends, loses no id, and the
row reports it. No figure is asserted."""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import httpx
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        import run
        import submit_client

        yield run, submit_client
    finally:
        sys.path.remove(str(BENCH))


def capture_one_request(listener: socket.socket, into: list[bytes]) -> None:
    """Accept one connection, keep what arrives until the body's Content-Length is in, answer 201."""
    conn, _ = listener.accept()
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head = data.split(b"\r\n\r\n", 1)[0].decode().lower()
        length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
        while len(data) < len(head) + 4 + length:
            data += conn.recv(65536)
        into.append(data)
        conn.sendall(b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"id": 7}')


def test_the_client_sends_the_bytes_httpx_sends(bench):
    """The posted bytes are httpx's own for the participant's submit request: same multipart body and boundary,
    same headers (Authorization, Content-Type with the boundary) in the same order."""
    _, submit_client = bench
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    captured: list[bytes] = []
    thread = threading.Thread(target=capture_one_request, args=(listener, captured))
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Authorization": "Bearer t0k"}) as c:
            request = submit_client.submit_request(c, 12, b'{"score": 0.5}')
            expected = submit_client.wire_bytes(request)
            assert c.send(request).json() == {"id": 7}
    finally:
        thread.join(10)
        listener.close()
    assert captured == [expected]
    head = expected.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"POST /api/v1/phases/12/submissions HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer t0k\r\n" in head
    assert b"\r\nContent-Type: multipart/form-data; boundary=" in head
    assert (
        b'name="input_file"; filename="preds.json"\r\nContent-Type: application/json\r\n\r\n{"score": 0.5}' in expected
    )


def test_every_posted_id_comes_back(bench):
    """Several client processes on keep-alive connections: each answer's id is collected, none twice or lost."""
    _, submit_client = bench
    with submit_client.canned_server() as (_, port):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Authorization": "Bearer t"}) as c:
            request = submit_client.wire_bytes(submit_client.submit_request(c, 1, b"{}"))
        with submit_client.SubmitClients(request, "127.0.0.1", port, 23, processes=3) as clients:
            clients.go()
            done = clients.wait()
    assert sorted(done["ids"]) == list(range(1, 24))
    assert done["cpu_s"] >= 0 and done["process_cpu_s"] >= done["cpu_s"]


def test_throughput_row_shows_the_client(bench):
    run, _ = bench
    row = {"evaluated_per_s": 120.0, "workers": "embedded", "lost": 0, "target": "t", "meets_target": True,
           "cpu_ms_per_submission": {"server": 5.0, "total": 5.0}, "client": {"processes": 4,
           "cpu_ms_per_submission": 0.12}, "baseline_client_alone": {"per_s": 2000.0, "client_cpu_ms_per_post": 0.04},
           "ratio_client_alone_to_evaluations": 16.7}  # fmt: skip
    (name, measured, baseline, ratio, *_), *_ = run.table({"throughput": row})
    assert name == "throughput"
    assert "client 0.12 ms (4 processes)" in measured
    assert "client alone 2,000.0/s (0.040 ms CPU/post)" in baseline
    assert "16.7x client" in ratio


@pytest.mark.slow
def test_throughput_row_runs(bench, tmp_path):
    """The row end to end at smoke size: every submission posted by the client processes is finished."""
    run, _ = bench
    results = run.main(["--smoke", "--only", "throughput", "--output", str(tmp_path / "t.json")])
    row = results["throughput"]
    assert "error" not in row, row.get("error")
    rounds = row["rounds"]
    assert len(rounds) == row["rounds_run"] == run.SIZES["smoke"]["throughput_rounds"] >= 2
    assert row["lost"] == 0 and row["statuses"] == {"finished": row["submissions"] * len(rounds)}
    low, high = row["evaluated_per_s_range"]
    assert low <= row["evaluated_per_s"] <= high and row["cpu_model"]
    for each in rounds:  # every round's own figures: rate, CPU with its load average, the warm-up it had
        assert each["lost"] == 0 and each["statuses"] == {"finished": row["submissions"]}
        assert each["evaluated_per_s"] > 0 and each["cpu_ms_per_submission"]["total"] > 0
        assert len(each["load_average"]["before"]) == len(each["load_average"]["after"]) == 3
        assert each["warm_up"]["submissions"] == row["warm_up_submissions"] and each["warm_up"]["seconds"] > 0
        assert "baseline_client_alone" not in each
    assert row["cpu_ms_per_submission_range"]["total"][0] <= row["cpu_ms_per_submission"]["total"]
    assert row["client"]["processes"] >= 2 and row["client"]["cpu_ms_per_submission"] > 0
    assert row["baseline_client_alone"]["per_s"] > 0
    assert row["compare_thread_mode"]["lost"] == 0
