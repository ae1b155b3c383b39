"""A real HTTP server on loopback that receives webhooks, checks their signatures, and answers as told."""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict
    body: bytes
    signature_ok: bool


@dataclass
class Receiver:
    secret: str = ""
    answers: list = field(default_factory=list)  # statuses (or (status, headers)) to answer, in order; then 200
    received: list[Received] = field(default_factory=list)
    delay: float = 0.0

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append(Received(dict(self.headers), body, receiver.check(self.headers, body)))
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                answer = receiver.answers.pop(0) if receiver.answers else 200
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"thanks" if status < 300 else b"x" * 200_000)  # a long body is read up to a bound

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def check(self, headers, body: bytes) -> bool:
        """The receiver's side of the scheme, written from the README, independent of the server's code."""
        parts = dict(p.split("=", 1) for p in headers.get("Assay-Signature", "").split(","))
        expected = hmac.new(self.secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts.get("v1", ""))
