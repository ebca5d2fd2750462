"""A local webhook receiver (http.server on 127.0.0.1 in a thread) and the README's verifier.

The verifier is not copied here: it is read out of README.md ("Webhook notifications") and run, so
the snippet users copy is the code the tests check signatures with.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def self_signed_cert(directory: Path) -> Path:
    """A key and self-signed certificate for 127.0.0.1 in one PEM file (openssl)."""
    pem = directory / "receiver.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(pem),
            "-out",
            str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pem.write_text(pem.read_text() + (directory / "cert.pem").read_text())
    return pem


def readme_verifier():
    """`verify_deplite_signature` as the README defines it."""
    text = README.read_text()
    section = text[text.index("### Webhook notifications") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md#webhook-notifications", "exec"), namespace)  # noqa: S102 (our own README)
    return namespace["verify_deplite_signature"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    # Send this many bytes of body in all (a huge answer), 64 KiB at a time until the client hangs up.
    stream_bytes: int = 0


class Receiver:
    """Answers each POST with the next scripted Reply (then 200 "ok"); records every request."""

    def __init__(self, *, tls_cert: Path | None = None) -> None:
        self.received: list[Received] = []
        self.replies: list[Reply] = []
        self.stream_stopped_at: int | None = None
        # Called (in the handler's thread) after a request is recorded, before it is answered.
        self.hold = None
        # When each request arrived (time.monotonic()), in order.
        self.arrived: list[float] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                receiver.arrived.append(time.monotonic())
                if receiver.hold is not None:
                    receiver.hold()
                reply = receiver.replies.pop(0) if receiver.replies else Reply()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                size = reply.stream_bytes or len(reply.body)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                if not reply.stream_bytes:
                    self.wfile.write(reply.body)
                    return
                sent, chunk = 0, b"x" * 65536
                try:
                    while sent < reply.stream_bytes:  # bounded by the size; ends early when the client goes
                        self.wfile.write(chunk)
                        sent += len(chunk)
                except OSError:
                    pass
                receiver.stream_stopped_at = sent

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls_cert is not None:  # a certificate no client trusts (self-signed)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_cert)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str = "/hook") -> str:
        return self.base + path

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
