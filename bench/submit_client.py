"""The throughput row's submit client: several processes posting a participant's submission, and its ceiling.

One thread of httpx per request could not post much faster than the platform answers (~94/s last session: the
benchmark process's GIL and httpx's per-request work), so the row could never show the platform above that.
Here the request is built once, by httpx as a participant's client builds it (multipart/form-data with its
boundary, the Authorization header, httpx's other headers), and its bytes are sent as they are by
``processes`` child processes, each on its own keep-alive connection, reading the answers with a few lines
of socket code. Each child reports the CPU the OS charged it (``getrusage``) while posting, so the row can
say what the client cost beside the server and worker; ``ceiling()`` runs the same children against a
canned-answer server (``sink``) to say how fast the client can post alone.

    python bench/submit_client.py post REQUEST_FILE HOST PORT COUNT
        connect, print "ready", wait for a line on stdin, post COUNT times, print one JSON line
    python bench/submit_client.py sink PORT_FILE
        answer every request with ``201 {"id": n}`` on a free port (written to PORT_FILE) until killed
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the children never import httpx: only the parent builds the request
    import httpx

HERE = Path(__file__).resolve().parent
PROCESSES = 4  # as many requests in flight as the 4 client threads the row used before


def submit_request(client: httpx.Client, phase: int, content: bytes, name: str = "preds.json") -> httpx.Request:
    """A participant's submit request: the file as ``input_file``, multipart/form-data, the client's headers."""
    return client.build_request(
        "POST", f"/phases/{phase}/submissions", files={"input_file": (name, content, "application/json")}
    )


def wire_bytes(request: httpx.Request) -> bytes:
    """What httpx writes on the connection for ``request`` (HTTP/1.1: request line, its headers, the body)."""
    head = [b" ".join((request.method.encode(), request.url.raw_path, b"HTTP/1.1"))]
    head += [k + b": " + v for k, v in request.headers.raw]
    return b"\r\n".join(head) + b"\r\n\r\n" + request.read()


# --- the child: one keep-alive connection, COUNT posts ----------------------------------------------------------


class Connection:
    """One HTTP/1.1 keep-alive connection that sends prebuilt requests and reads the answers' status and body."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.connect()

    def connect(self) -> None:
        self.sock = socket.create_connection(self.address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if not self._fill():
                raise ConnectionError("the server closed the connection before answering")
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        self.buffer = self.buffer[end + 4 :]
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(self.buffer) < length:
                if not self._fill():
                    raise ConnectionError("the server closed the connection inside an answer")
            body, self.buffer = self.buffer[:length], self.buffer[length:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked()
        else:  # the body runs to the end of the connection
            while self._fill():
                pass
            body, headers["connection"] = self.buffer, "close"
        if headers.get("content-encoding") in ("gzip", "deflate"):
            body = zlib.decompress(body, zlib.MAX_WBITS | 32)
        if headers.get("connection", "").lower() == "close":
            self.sock.close()
            self.connect()
        return status, body

    def _chunked(self) -> bytes:
        body = b""
        while True:
            while (end := self.buffer.find(b"\r\n")) < 0:
                self._fill()
            size = int(self.buffer[:end].split(b";")[0], 16)
            while len(self.buffer) < end + 2 + size + 2:
                self._fill()
            body += self.buffer[end + 2 : end + 2 + size]
            self.buffer = self.buffer[end + 2 + size + 2 :]
            if size == 0:
                return body


def cpu_now() -> float:
    """User + system CPU the OS charged this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def post(request_file: str, host: str, port: int, count: int) -> None:
    request = Path(request_file).read_bytes()
    connection = Connection(host, port)
    print("ready", flush=True)
    sys.stdin.readline()
    cpu0, t0 = cpu_now(), time.perf_counter()
    ids = []
    for _ in range(count):
        status, body = connection.exchange(request)
        if status != 201:
            print(json.dumps({"error": f"submit answered {status}: {body[:300].decode(errors='replace')}"}))
            sys.exit(1)
        ids.append(json.loads(body)["id"])
    print(json.dumps({"ids": ids, "wall_s": time.perf_counter() - t0, "cpu_s": cpu_now() - cpu0,
                      "process_cpu_s": cpu_now()}), flush=True)  # fmt: skip


# --- the parent: start the children, let them go together, collect what they posted ---------------------------


class SubmitClients:
    """``processes`` children posting ``request`` ``n`` times in all to host:port; started and connected on
    enter, posting from :meth:`go`, their ids and CPU from :meth:`wait`."""

    def __init__(self, request: bytes, host: str, port: int, n: int, processes: int = PROCESSES) -> None:
        self.request, self.address, self.n, self.processes = request, (host, port), n, processes

    def __enter__(self) -> SubmitClients:
        fd, self.request_file = tempfile.mkstemp(prefix="assay-bench-request-")
        os.write(fd, self.request)
        os.close(fd)
        counts = [self.n // self.processes + (i < self.n % self.processes) for i in range(self.processes)]
        host, port = self.address
        self.children = [
            subprocess.Popen([sys.executable, str(HERE / "submit_client.py"), "post", self.request_file, host,
                              str(port), str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for count in counts if count
        ]  # fmt: skip
        for child in self.children:
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a submit client did not start")
        return self

    def go(self) -> None:
        for child in self.children:
            child.stdin.write("go\n")
            child.stdin.flush()

    def wait(self) -> dict:
        """Every id posted (in each child's order), the children's CPU while posting (``cpu_s``) and in all
        (``process_cpu_s``, with their start-up), and the slowest child's posting time."""
        reports = []
        for child in self.children:
            line = child.stdout.readline()
            child.wait(60)
            report = json.loads(line) if line.strip() else {"error": f"a submit client ended ({child.returncode})"}
            if "error" in report:
                raise RuntimeError(report["error"])
            reports.append(report)
        return {
            "ids": [i for r in reports for i in r["ids"]],
            "wall_s": max(r["wall_s"] for r in reports),
            "cpu_s": sum(r["cpu_s"] for r in reports),
            "process_cpu_s": sum(r["process_cpu_s"] for r in reports),
        }

    def __exit__(self, *exc) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait()
            child.stdin.close()
            child.stdout.close()
        os.unlink(self.request_file)


# --- the ceiling: the same client against a server that answers at once ----------------------------------------


def sink(port_file: str) -> None:
    """Read each request to the end of its body and answer ``201 {"id": n}``, keeping the connection."""
    import asyncio  # here only: the posting children start without it

    posted = 0

    class Sink(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport, self.buffer = transport, b""

        def data_received(self, data: bytes) -> None:
            nonlocal posted
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                head = self.buffer[:end].lower()
                at = head.find(b"content-length:")
                length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                posted += 1
                body = b'{"id": %d}' % posted
                self.transport.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %d"
                                     b"\r\n\r\n%s" % (len(body), body))  # fmt: skip

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", 0)
        Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
        await server.serve_forever()

    asyncio.run(serve())


@contextmanager
def canned_server() -> Iterator[tuple[subprocess.Popen, int]]:
    """``sink`` in a child process: (the process, its port) until the block ends."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        server = subprocess.Popen([sys.executable, str(HERE / "submit_client.py"), "sink", str(port_file)])
        try:
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text()):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the canned-answer server did not start")
                time.sleep(0.02)
            yield server, int(port_file.read_text())
        finally:
            server.kill()
            server.wait()


def ceiling(content: bytes, token: str, phase: int, n: int, processes: int = PROCESSES) -> dict:
    """How fast the same client posts the same request when the server answers at once: the client's own
    limit, with its CPU per post and the canned server's (both from the OS)."""
    import httpx
    from measure import cpu_seconds

    with canned_server() as (server, port):
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Authorization": f"Bearer {token}"}
        ) as c:
            request = wire_bytes(submit_request(c, phase, content))
        with SubmitClients(request, "127.0.0.1", port, n, processes) as clients:
            server_cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
            clients.go()
            done = clients.wait()
            wall, server_cpu = time.perf_counter() - t0, cpu_seconds(server.pid) - server_cpu0
    return {
        "posts": n,
        "processes": processes,
        "per_s": round(n / wall, 1),
        "client_cpu_ms_per_post": round(1000 * done["cpu_s"] / n, 3),
        "canned_server_cpu_ms_per_post": round(1000 * server_cpu / n, 3),
    }


if __name__ == "__main__":
    if sys.argv[1] == "post":
        post(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "sink":
        sink(sys.argv[2])
    else:
        sys.exit(__doc__)
