"""The worker's HTTP client against a real HTTP server that misbehaves on purpose.

Each test scripts the answers of a small ``http.server`` on loopback: connections dropped in the
middle of a file, 502/503 (with and without ``Retry-After``), 429, refusals, wrong bytes. A download
must survive the transient ones (hash checked again each time), give up at once on a refusal, and
any wait must end when the worker stops.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assay.worker.cache import FileCache
from assay.worker.client import ProtocolError, TokenRefused, WorkerClient, WorkerStopped

DATA = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(DATA).hexdigest()

Step = Callable[[BaseHTTPRequestHandler], None]


def ok(handler: BaseHTTPRequestHandler) -> None:
    _send(handler, 200, DATA)


def drop_midway(handler: BaseHTTPRequestHandler) -> None:
    """Promise the whole file, send a third of it, close the connection."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(DATA)))
    handler.end_headers()
    handler.wfile.write(DATA[: len(DATA) // 3])
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(2)


def status(code: int, retry_after: str | None = None) -> Step:
    def step(handler: BaseHTTPRequestHandler) -> None:
        _send(handler, code, b'{"error": {"message": "scripted"}}', retry_after)

    return step


def wrong_bytes(handler: BaseHTTPRequestHandler) -> None:
    _send(handler, 200, b"x" + DATA[1:])


def stall(handler: BaseHTTPRequestHandler) -> None:
    """Headers and a little of the body, then nothing for a long time."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(DATA)))
    handler.end_headers()
    handler.wfile.write(DATA[:1000])
    handler.wfile.flush()
    time.sleep(30)


class Held:
    """A step that stalls until released (or 300 s: far past any test), then answers ``code``; ``ended``
    says whether a stall ran to its end. A call that returns while ``ended`` is still False was ended by
    the client itself, not by the server's answer (no clock needed to tell)."""

    def __init__(self, code: int = 204, partial: bool = False) -> None:
        self.code = code
        self.partial = partial
        self.gate = threading.Event()
        self.ended = False

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        if self.partial:  # headers and a little of the body, then nothing
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(DATA)))
            handler.end_headers()
            handler.wfile.write(DATA[:1000])
            handler.wfile.flush()
        self.gate.wait(300)
        self.ended = True
        if not self.partial:
            _send(handler, self.code, b"")


@pytest.fixture
def slow_timeouts(monkeypatch):
    """The client's short per-request timeouts made longer than a held step: only stopping ends the wait."""
    import httpx

    from assay.worker import client as client_module

    monkeypatch.setattr(client_module, "SHORT", httpx.Timeout(600.0, connect=5.0))


def _send(handler: BaseHTTPRequestHandler, code: int, body: bytes, retry_after: str | None = None) -> None:
    handler.send_response(code)
    handler.send_header("Content-Length", str(len(body)))
    if retry_after is not None:
        handler.send_header("Retry-After", retry_after)
    handler.end_headers()
    handler.wfile.write(body)


class Scripted:
    """A loopback HTTP server answering each request with the next step (the last one repeats)."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.seen: list[tuple[float, str, str]] = []  # (time, method, path)
        script = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                script.seen.append((time.monotonic(), self.command, self.path))
                step = script.steps[min(len(script.seen), len(script.steps)) - 1]
                step(self)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    servers: list[Scripted] = []

    def start(*steps: Step) -> Scripted:
        servers.append(Scripted(list(steps)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _client(server: Scripted, retry_for: float = 30) -> WorkerClient:
    return WorkerClient(server.url, "aw_test", retry_for=retry_for)


def test_a_dropped_connection_and_5xx_mid_download_are_retried_and_the_hash_checked(serve, tmp_path):
    server = serve(drop_midway, status(502), status(503), ok)
    target = _client(server).download(SHA, tmp_path / "f" / "file.bin")
    assert target.read_bytes() == DATA
    assert len(server.seen) == 4 and all(path == f"/api/v1/worker/files/{SHA}" for _, _, path in server.seen)
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no partial file left behind


def test_retry_after_is_honoured_on_503_and_429(serve, tmp_path):
    server = serve(status(503, "2"), status(429, "1"), ok)
    _client(server).download(SHA, tmp_path / "file.bin")
    (t1, _, _), (t2, _, _), (t3, _, _) = server.seen
    assert t2 - t1 >= 1.9 and t3 - t2 >= 0.9  # the server's pauses, not the client's 0.5 s / 1 s backoff


@pytest.mark.parametrize("code", [400, 403, 404, 410])
def test_a_refusal_is_never_retried(serve, tmp_path, code):
    server = serve(status(code), ok)
    with pytest.raises(ProtocolError) as info:
        _client(server).download(SHA, tmp_path / "file.bin")
    assert info.value.status == code and len(server.seen) == 1
    assert not (tmp_path / "file.bin").exists()


def test_bytes_that_keep_hashing_wrong_fail_after_a_few_tries(serve, tmp_path):
    server = serve(wrong_bytes, wrong_bytes, ok)
    assert _client(server).download(SHA, tmp_path / "a.bin").read_bytes() == DATA  # one bad copy is retried
    server = serve(wrong_bytes)
    with pytest.raises(ProtocolError, match="hash to"):
        _client(server).download(SHA, tmp_path / "b.bin")
    assert len(server.seen) == 3 and not (tmp_path / "b.bin").exists()


def test_retries_are_bounded(serve, tmp_path):
    server = serve(status(502))
    with pytest.raises(ConnectionError, match="server error 502"):
        _client(server, retry_for=1.2).download(SHA, tmp_path / "file.bin")
    assert 2 <= len(server.seen) <= 4


def test_the_cache_fetches_through_the_retries(serve, tmp_path):
    server = serve(drop_midway, ok)
    cache = FileCache(tmp_path / "cache")
    path = cache.fetch(_client(server), {"sha256": SHA, "name": "data.bin", "size": len(DATA)})
    assert path.read_bytes() == DATA and len(server.seen) == 2
    assert cache.fetch(_client(server), {"sha256": SHA, "name": "data.bin"}) == path and len(server.seen) == 2


def test_stopping_ends_a_stalled_download_at_once(serve, tmp_path):
    held = Held(partial=True)
    client = WorkerClient(serve(held).url, "aw_test", timeout=600, retry_for=120)
    threading.Timer(1.0, client.stopping.set).start()
    with pytest.raises(WorkerStopped):
        client.download(SHA, tmp_path / "file.bin")
    assert not held.ended  # the client gave up the read; the server was still holding it
    held.gate.set()
    assert not (tmp_path / "file.bin").exists()


def test_stopping_ends_a_download_backoff_at_once(serve, tmp_path):
    server = serve(status(503, "60"))  # the server asks for a 60 s pause before the next try
    client = _client(server, retry_for=120)
    threading.Timer(1.0, client.stopping.set).start()
    with pytest.raises(WorkerStopped):
        client.download(SHA, tmp_path / "file.bin")
    assert len(server.seen) == 1  # the stop ended the first pause: no second try was made
    assert not (tmp_path / "file.bin").exists()


def test_complete_retries_through_an_outage_then_lands(serve):
    server = serve(status(502), status(503, "1"), lambda h: _send(h, 200, b'{"status": "finished"}'))
    answer = _client(server).complete(7, 1, {"output": {"result": []}})
    assert answer == {"status": "finished"} and [p for _, _, p in server.seen] == ["/api/v1/worker/jobs/7/complete"] * 3


def test_a_stopping_claim_asks_the_server_to_end_it(serve):
    """The long-poll is not waited out: the client says it is leaving and gives the claim a moment."""
    held = Held(204)
    server = serve(held, lambda h: _send(h, 200, b'{"left": true}'))
    client = _client(server)
    threading.Timer(0.5, client.stopping.set).start()
    with pytest.raises(WorkerStopped):
        client.claim("w-1", wait=600)
    assert not held.ended  # not waited out
    held.gate.set()
    assert [p for _, _, p in server.seen] == ["/api/v1/worker/claim", "/api/v1/worker/leave"]


def test_a_heartbeat_to_a_server_that_does_not_answer_is_given_up_when_stopping(serve, slow_timeouts):
    held = Held(200)
    client = _client(serve(held))
    threading.Timer(0.5, client.stopping.set).start()
    with pytest.raises(WorkerStopped):
        client.heartbeat(7, 1)
    assert not held.ended
    held.gate.set()


def test_a_server_without_the_batched_heartbeat_is_asked_job_by_job(serve):
    """An older server answers 404 to ``POST /heartbeat``: each lease is renewed by its own request from then
    on (the batched route is not asked again), and a lease it refuses (409) is "ended", not an error."""
    server = serve(status(404), status(200), status(409), status(200), status(200))
    client = _client(server)
    assert client.heartbeat_several([(7, 1), (8, 2)]) == ["extended", "ended"]
    assert client.heartbeat_several([(7, 1), (9, 1)]) == ["extended", "extended"]
    assert [p for _, _, p in server.seen] == [
        "/api/v1/worker/heartbeat",
        "/api/v1/worker/jobs/7/heartbeat",
        "/api/v1/worker/jobs/8/heartbeat",
        "/api/v1/worker/jobs/7/heartbeat",
        "/api/v1/worker/jobs/9/heartbeat",
    ]


@pytest.mark.parametrize("refusals", [(403,), (404, 401)], ids=["batched", "job-by-job"])
def test_a_refused_token_is_not_taken_for_an_older_server(serve, refusals):
    server = serve(*(status(code) for code in refusals))
    with pytest.raises(TokenRefused):
        _client(server).heartbeat_several([(7, 1)])
    assert len(server.seen) == len(refusals)


def test_a_result_that_cannot_be_sent_is_kept_and_sent_later(serve, tmp_path):
    down = serve(status(503))
    client = _client(down, retry_for=60)
    client.outbox = tmp_path / "outbox"
    threading.Timer(1.0, client.stopping.set).start()
    with pytest.raises(WorkerStopped):
        client.complete(7, 2, {"output": {"result": [{"public": {"Accuracy": 1.0}}]}})
    assert client.kept(7, 2) and [p.name for p in client.outbox.iterdir()] == ["7-2.json"]

    still_down = serve(status(502))
    client = _client(still_down)
    client.outbox = tmp_path / "outbox"
    assert client.send_kept() == 0 and client.kept(7, 2) and len(still_down.seen) == 1  # one try, kept

    taken: list[bytes] = []

    def record(handler: BaseHTTPRequestHandler) -> None:
        taken.append(handler.path.encode())
        _send(handler, 200, b'{"status": "finished"}')

    back = serve(record)
    client = _client(back)
    client.outbox = tmp_path / "outbox"
    assert client.send_kept() == 1 and not client.kept(7, 2)
    assert taken == [b"/api/v1/worker/jobs/7/complete"]


def test_a_kept_result_the_server_refuses_is_dropped(serve, tmp_path):
    client = _client(serve(status(409)), retry_for=0.1)
    client.outbox = tmp_path / "outbox"
    client._keep(7, 1, {"error": "x"})
    assert client.send_kept() == 1 and not client.kept(7, 1)  # a later attempt completed: nothing to send


def test_a_damaged_kept_result_is_dropped_without_stopping_the_worker(serve, tmp_path):
    client = _client(serve(lambda h: _send(h, 200, b'{"status": "finished"}')))
    client.outbox = tmp_path / "outbox"
    client.outbox.mkdir()
    (client.outbox / "3-1.json").write_text("{not json")
    client._keep(4, 1, {"error": "x"})
    assert client.send_kept() == 1 and not list(client.outbox.iterdir())


def test_a_report_to_a_server_that_does_not_answer_is_kept_when_stopping(serve, tmp_path, slow_timeouts):
    held = Held(200)
    client = _client(serve(held))
    client.outbox = tmp_path / "outbox"
    threading.Timer(0.5, client.stopping.set).start()
    with pytest.raises(WorkerStopped):
        client.complete(9, 1, {"error": "out of memory"})
    assert not held.ended and client.kept(9, 1)
    held.gate.set()


def test_a_redirect_to_the_object_store_is_followed_without_the_worker_token(serve, tmp_path):
    """With S3 storage the server answers a file request with a presigned URL of the store: the worker
    fetches it there (the token never leaves for another host), and a blip of the store starts over."""
    tokens: list[str | None] = []

    def stored(handler: BaseHTTPRequestHandler) -> None:
        tokens.append(handler.headers.get("Authorization"))
        ok(handler)

    store = serve(status(503), stored)

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", f"{store.url}/bucket/key?X-Amz-Signature=abc")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server = serve(redirect)
    target = _client(server).download(SHA, tmp_path / "file.bin")
    assert target.read_bytes() == DATA
    assert len(server.seen) == 2 and [path for _, _, path in store.seen] == ["/bucket/key?X-Amz-Signature=abc"] * 2
    assert tokens == [None]
