"""Abuse of the web process, as the Procfile runs it (gunicorn, deplite.web_worker.Worker, deplite/asgi.py),
with raw sockets: each attack runs while normal `GET /healthz` requests must be answered within 2 s.

One worker, so the attack and the probes share one event loop and one thread pool. Every loop is
bounded in count and time; loopback only."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid

import pytest
import requests

from tests.ops.test_shutdown import Gunicorn, _env
from tests.s3_server import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

# drf-spectacular-sidecar's largest static file (3.9 MB), served by WhiteNoise.
BIG_STATIC = "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js.map"
PROBE_LIMIT_SECONDS = 2.0


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    port = free_port()
    gunicorn = Gunicorn(
        port=port, env=_env(port), log_path=tmp_path_factory.mktemp("abuse") / "gunicorn.log", workers=1
    )
    gunicorn.start()
    gunicorn.port = port
    try:
        yield gunicorn
    finally:
        gunicorn.kill()


def _probe(server) -> float:
    """One normal request; its answer time, or a failure if it is not a quick 200."""
    started = time.monotonic()
    response = requests.get(f"{server.url}/healthz", timeout=PROBE_LIMIT_SECONDS + 3)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    return elapsed


def _probes_during(server, count: int = 5, pause: float = 0.3) -> list[float]:
    times = []
    for _ in range(count):
        try:
            times.append(_probe(server))
        except requests.RequestException:
            times.append(float("inf"))
        time.sleep(pause)
    return times


def _exchange(port: int, data: bytes, *, timeout: float = 10) -> bytes:
    """Send raw bytes, read until the server closes (or `timeout`); what came back. A server that
    refuses half-way may reset the connection: whatever arrived before that is returned."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        deadline = time.monotonic() + timeout
        with contextlib.suppress(OSError):
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
    return received


def _read_answer(sock: socket.socket) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """One HTTP answer from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed by the server after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}
    if b"content-length" not in headers:  # chunked: read to the last chunk
        while not body.endswith(b"0\r\n\r\n"):
            body += sock.recv(65536)
        return status, headers, body
    while len(body) < int(headers[b"content-length"]):
        body += sock.recv(65536)
    return status, headers, body


def _head(answer: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    head = answer.partition(b"\r\n\r\n")[0]
    status, *lines = head.split(b"\r\n")
    return status, {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}


def test_thirty_thousand_duplicate_headers_are_refused_while_normal_requests_are_answered(server):
    # Two attackers, each sending requests with 30,000 `X-Dup:` lines (a single one used to hold the
    # event loop for seconds, joining them), for as long as the probes run.
    attack = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Dup: a\r\n" * 30_000 + b"\r\n"
    stop = threading.Event()
    answers: list[bytes] = []

    def attacker():
        for _ in range(10):
            if stop.is_set():
                return
            answers.append(_exchange(server.port, attack, timeout=30))

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    times = _probes_during(server)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert max(times) < PROBE_LIMIT_SECONDS, times
    assert answers
    # Refused with 431 (or reset once refused, with the rest of the request unread): never served.
    assert all(a == b"" or a.startswith(b"HTTP/1.1 431 ") for a in answers), {a[:40] for a in answers}
    assert any(a.startswith(b"HTTP/1.1 431 ") for a in answers)


def test_a_header_over_the_field_size_limit_is_refused(server):
    answer = _exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    # A head that never ends is cut off, not buffered: 2 MB of one header value without a line end.
    answer = _exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2_000_000)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert _probe(server) < PROBE_LIMIT_SECONDS


def test_sixteen_clients_not_reading_a_big_static_file_leave_normal_requests_answered(server):
    slow = []
    try:
        for _ in range(16):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # A small receive window, and never a recv(): the server's sends back up at once.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(f"GET {BIG_STATIC} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            slow.append(sock)
        time.sleep(1.5)  # their answers have started and stalled
        times = _probes_during(server)
        # A client that reads gets the whole file meanwhile, byte for byte as WhiteNoise serves it.
        whole = requests.get(f"{server.url}{BIG_STATIC}", timeout=30)
    finally:
        for sock in slow:
            sock.close()
    assert max(times) < PROBE_LIMIT_SECONDS, times
    assert whole.status_code == 200
    assert len(whole.content) == int(whole.headers["Content-Length"]) > 3_000_000


def test_header_names_with_underscores_are_dropped(server):
    # WSGI spells X_Request_ID and X-Request-ID alike; only the hyphenated one is the header.
    request_id = uuid.uuid4().hex
    status, headers = _head(
        _exchange(
            server.port,
            f"GET /healthz HTTP/1.1\r\nHost: x\r\nX_Request_ID: {request_id}\r\nConnection: close\r\n\r\n".encode(),
        )
    )
    assert status.startswith(b"HTTP/1.1 200 ")
    assert headers[b"x-request-id"] != request_id.encode()
    # The hyphenated spelling is echoed, so the check above looks at the right thing.
    status, headers = _head(
        _exchange(
            server.port,
            f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: {request_id}\r\nConnection: close\r\n\r\n".encode(),
        )
    )
    assert headers[b"x-request-id"] == request_id.encode()
    assert _probe(server) < PROBE_LIMIT_SECONDS


def test_an_http_1_0_request_gets_an_answer_it_can_read(server):
    answer = _exchange(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    status, headers = _head(answer)
    assert status.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding" not in headers  # HTTP/1.0 has no chunked encoding
    body = answer.partition(b"\r\n\r\n")[2]
    assert int(headers[b"content-length"]) == len(body) > 0
    assert _probe(server) < PROBE_LIMIT_SECONDS


def test_a_request_line_without_an_http_version_is_refused(server):
    answer = _exchange(server.port, b"GET /healthz\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
    assert _probe(server) < PROBE_LIMIT_SECONDS


def test_an_idle_connection_is_kept_open_past_a_load_balancers_reuse(server):
    # gunicorn's default closed it after 2 s; a load balancer reusing it then gets a 502.
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=PROBE_LIMIT_SECONDS) as sock:
        sock.sendall(request)
        assert _read_answer(sock)[0].startswith(b"HTTP/1.1 200 ")
        time.sleep(4)
        started = time.monotonic()
        sock.sendall(request)
        status, _, _ = _read_answer(sock)
        assert status.startswith(b"HTTP/1.1 200 ")
        assert time.monotonic() - started < PROBE_LIMIT_SECONDS


def test_a_local_client_cannot_choose_its_rate_limit_address_with_x_forwarded_for(server):
    # Bad bearer credentials are limited per client address. Without DEPLITE_TRUSTED_PROXIES no one's
    # X-Forwarded-For is applied, the server's included: a new address per request dodges nothing.
    statuses = []
    for n in range(70):  # 30 failures a minute: over a minute boundary, one window still gets 31
        response = requests.get(
            f"{server.url}/api/orgs",
            headers={
                "Authorization": f"Bearer tk_not_a_token_{n}",
                "X-Forwarded-For": f"198.18.{n}.{uuid.uuid4().int % 250 + 1}",
            },
            timeout=10,
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert _probe(server) < PROBE_LIMIT_SECONDS
