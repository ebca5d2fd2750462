"""Under uvicorn (the production server), a request body over the limit is a 413 before
Django reads it — including a chunked body, which has no Content-Length (issue 11 item 6)."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db(transaction=True)


def _post(url: str, path: str, *, chunks: list[bytes] | None = None, declared: int | None = None) -> tuple[int, dict]:
    """One raw HTTP/1.1 POST, so the framing is exactly what the test says: chunked when
    `chunks` is given, else a Content-Length of `declared` with no body sent at all."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        if chunks is not None:
            head += "Transfer-Encoding: chunked\r\n\r\n"
        else:
            head += f"Content-Length: {declared}\r\n\r\n"
        sock.sendall(head.encode())
        try:
            for chunk in chunks or ():
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if chunks is not None:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest was sent: that is the point
        response = b""
        while b"\r\n\r\n" not in response or len(response.split(b"\r\n\r\n", 1)[1]) < _length(response):
            data = sock.recv(65536)
            if not data:
                break
            response += data
    status = int(response.split(b" ", 2)[1])
    body = response.split(b"\r\n\r\n", 1)[1]
    return status, json.loads(body) if body.startswith(b"{") else {}


def _length(response: bytes) -> int:
    for line in response.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_chunked_body_over_the_limit_is_a_413_under_uvicorn(deplite_stack):
    limit = settings.DEPLITE_MAX_API_BODY_BYTES
    chunk = b"x" * 16384
    count = limit // len(chunk) + 4  # 64 KiB over the limit
    status, body = _post(deplite_stack.url, "/api/orgs", chunks=[chunk] * count)
    assert status == 413
    assert body["error"]["code"] == "payload_too_large" and body["error"]["details"] == {"maxBytes": limit}


def test_a_declared_length_over_the_limit_is_a_413_without_sending_the_body(deplite_stack):
    status, body = _post(deplite_stack.url, "/api/orgs", declared=50 * 1024**3)
    assert status == 413 and body["error"]["code"] == "payload_too_large"


def test_a_chunked_body_under_the_limit_reaches_the_api(deplite_stack):
    # Anonymous, so Django's answer is a 401: the body went through to the view's auth.
    status, body = _post(deplite_stack.url, "/api/orgs", chunks=[b'{"name": ', b'"small"}'])
    assert status == 401 and body["error"]["code"] == "not_authenticated"
