"""A normal request's latency while the web process is abused (issue 18): 16 clients that asked for a
3.9 MB static file and never read, and a client sending requests of 30,000 duplicate header lines
back to back. One client sends `GET /healthz` one after another on a kept-alive connection, first
with no abuse, then during it; p50/p99/max of each.

Bounded: BENCH_ABUSE_REQUESTS (500) probes per phase, at most BENCH_SECONDS × 5 s each; the attack
loop stops with the probes (and after 2,000 requests). Loopback only.

    .venv/bin/python bench/web_abuse.py          # alone; or `make bench BENCH_PARTS=abuse`
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import flush_redis, prepare_database, production_env, start_web  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_ABUSE_REQUESTS", "500"))
PHASE_SECONDS = int(os.environ.get("BENCH_SECONDS", "6")) * 5
SLOW_READERS = 16
DUPLICATES = 30_000
BIG_STATIC = "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js.map"


def _probe_latencies(base: str) -> list[float]:
    session = requests.Session()
    latencies: list[float] = []
    deadline = time.monotonic() + PHASE_SECONDS
    while len(latencies) < REQUESTS and time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            ok = session.get(f"{base}/healthz", timeout=10).status_code == 200
        except requests.RequestException:
            ok = False
        latencies.append((time.perf_counter() - started) * 1000 if ok else float("inf"))
    return latencies


def _exchange(host: str, port: int, data: bytes) -> bytes:
    received = b""
    with socket.create_connection((host, port), timeout=30) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
            while chunk := sock.recv(65536):
                received += chunk
    return received


def measure(env: dict, base: str) -> dict:
    del env
    parts = urlsplit(base)
    host, port = parts.hostname, parts.port
    quiet = _probe_latencies(base)
    slow = []
    stop = threading.Event()
    attacks: dict[str, int] = {}

    def attacker():
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Dup: a\r\n" * DUPLICATES + b"\r\n"
        for _ in range(2000):
            if stop.is_set():
                return
            status = _exchange(host, port, request)[:12].decode("latin-1") or "reset"
            attacks[status] = attacks.get(status, 0) + 1

    try:
        for _ in range(SLOW_READERS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect((host, port))
            sock.sendall(f"GET {BIG_STATIC} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            slow.append(sock)
        thread = threading.Thread(target=attacker, daemon=True)
        thread.start()
        time.sleep(1)  # the slow answers have stalled, the attack is under way
        abused = _probe_latencies(base)
        stop.set()
        thread.join(60)
    finally:
        for sock in slow:
            sock.close()
    return {"quiet": quiet, "abused": abused, "attacks": attacks}


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(pct / 100 * len(ordered)))] if ordered else float("nan")


def table(result: dict) -> list[str]:
    lines = [
        "",
        "| GET /healthz, one client, keep-alive | requests | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for name, key in (
        ("no abuse", "quiet"),
        (f"{SLOW_READERS} slow readers + {DUPLICATES:,}-header requests", "abused"),
    ):
        values = result[key]
        lines.append(
            f"| {name} | {len(values)} | {_pct(values, 50):.1f} | {_pct(values, 99):.1f} | {max(values):.1f} |"
        )
    answers = ", ".join(f"{k.strip()}×{v}" for k, v in sorted(result["attacks"].items()))
    lines.append(f"\n{DUPLICATES:,}-header requests sent during the abused phase: {answers}.")
    return lines


if __name__ == "__main__":
    environment = production_env()
    prepare_database(environment)
    flush_redis()
    web, url = start_web(environment, workers=2)
    try:
        print("\n".join(table(measure(environment, url))))
    finally:
        web.stop()
