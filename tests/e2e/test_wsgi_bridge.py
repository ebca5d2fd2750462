"""Requests through the production server's WSGI bridge (deplite/wsgi_bridge.py), over real HTTP to
uvicorn: bodies however framed, answers whole or streamed, a client that leaves half-way."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.contrib.staticfiles import finders

from tests.agent_program.harness import wait_until


def test_a_chunked_json_body_reaches_the_view_whole(e2e):
    # requests sends a generator's body chunked (Transfer-Encoding: chunked, no Content-Length).
    parts = [b'{"name": "chunked', b' trigger", "type": "webhook", ', b'"workflow": "deploy"}']
    response = requests.post(
        f"{e2e.url}/api/orgs/{e2e.org.slug}/triggers",
        data=iter(parts),
        headers={"Authorization": f"Bearer {e2e.jwt}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "chunked trigger"
    assert [t["name"] for t in e2e.api("GET", "/triggers")["results"]] == ["chunked trigger"]


def test_a_streamed_answer_arrives_whole(e2e):
    # Static files are Django streaming responses (whitenoise): chunk by chunk through the bridge.
    source = Path(finders.find("vendor/htmx/htmx.min.js"))
    response = requests.get(f"{e2e.url}/static/vendor/htmx/htmx.min.js", timeout=30)
    assert response.status_code == 200
    assert len(response.content) > 10_000 and response.content == source.read_bytes()


def test_a_client_that_leaves_mid_body_is_not_answered_and_the_server_goes_on(e2e):
    parts = urlsplit(e2e.url)
    path = f"/api/orgs/{e2e.org.slug}/triggers?left-half-way"
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {e2e.jwt}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"name": "half'
        )
    # The server keeps serving, and Django never saw the half body (no answer was logged for it).
    assert e2e.api("GET", "/triggers")["results"] == []
    wait_until(lambda: "GET /api/orgs" in e2e.stack.server.output(), timeout=10, message="the request log")
    assert "left-half-way" not in e2e.stack.server.output()
