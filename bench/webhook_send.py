"""One webhook delivery's cost in the client: `integrations.webhook.transport.post_event` (sign,
resolve and check the address, a fresh guarded connection, POST, read the answer) against a local
receiver, next to `requests.post` of the same body to the same receiver (the library, unguarded,
a fresh connection too), so the guard's share is visible. Also the signing alone.

Loopback only; BENCH_ROUNDS requests each (bounded).

    .venv/bin/python bench/webhook_send.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "300"))


def _ms(samples: list[float], unit: str = "ms") -> str:
    scale = 1e6 if unit == "µs" else 1e3
    samples = sorted(samples)
    p90 = samples[int(len(samples) * 0.9) - 1]
    return " · ".join(
        f"{name} {value * scale:.2f} {unit}"
        for name, value in (("p50", statistics.median(samples)), ("p90", p90), ("max", samples[-1]))
    )


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deplite.settings")
    os.environ["DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS"] = "true"  # the receiver is on loopback
    import django

    django.setup()
    import requests

    from integrations.webhook import transport
    from tests.integrations.webhook_receiver import Receiver

    receiver = Receiver()
    body = transport.encode({"event": "job.finished", "jobId": "0" * 36, "status": "succeeded", "params": {"A": "1"}})
    try:
        signing = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            transport.signature(secret="whsec_bench", body=body, timestamp=int(time.time()))
            signing.append(time.perf_counter() - start)
        guarded, plain = [], []
        for i in range(ROUNDS):
            start = time.perf_counter()
            transport.post_event(url=receiver.url(), secret="whsec_bench", body=body, event="test", delivery_id=str(i))
            guarded.append(time.perf_counter() - start)
            start = time.perf_counter()
            requests.post(receiver.url(), data=body, headers={"Content-Type": "application/json"}, timeout=10)
            plain.append(time.perf_counter() - start)
    finally:
        receiver.close()
    print(f"webhook client, {ROUNDS} POSTs each to a local receiver ({len(body)}-byte body):")
    print(f"  signature only:                 {_ms(signing, 'µs')}")
    print(f"  post_event (guarded, signed):   {_ms(guarded)}")
    print(f"  requests.post (unguarded):      {_ms(plain)}")


if __name__ == "__main__":
    main()
