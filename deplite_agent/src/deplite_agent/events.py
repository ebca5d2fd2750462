"""Job events on their way to the server: an on-disk spool with sequence numbers, log coalescing, and
a delivery thread that batches, retries with backoff and sends `finish` last.

Each event gets the next sequence number and is appended to `logs/spool/<jobId>/events.jsonl` before
anything is sent, so a server outage (or an agent restart) loses nothing; the server ignores sequence
numbers it has already accepted, so a retried batch is never applied twice.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .client import Backoff, RetryableError, ServerClient, ServerError
from .runner import utcnow_iso

log = logging.getLogger(__name__)

SEND_EARLY_BYTES = 64 * 1024  # send without waiting for the timer once this much is waiting
# One request carries at most this much (the spool's bytes are the wire's: UTF-8, escapes counted),
# under the server's default 1 MiB body limit. Few large requests: a 20 MB step's log is ~30
# requests, each paying the signature, the nonce and the job's row lock once.
MAX_BATCH_BYTES = 768 * 1024
SEND_INTERVAL = 0.5  # seconds between sends while a job talks
LOG_FLUSH_AGE = 0.3  # a pending log chunk becomes an event after this long
LOG_CHUNK_BYTES = 64 * 1024  # …or once it is this big (one stored row per chunk)
# A silent step still asks the server every so often (an empty events batch) so a cancel reaches it.
CANCEL_POLL_SECONDS = 2.0


class EventSpool:
    """The events of one job on disk, and how far the server has acknowledged them."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.events_path = self.dir / "events.jsonl"
        self.acked_path = self.dir / "acked"
        self.finish_path = self.dir / "finish.json"
        self.lock = threading.Lock()
        self.acked = int(self.acked_path.read_text() or 0) if self.acked_path.exists() else 0
        # (seq, byte offset, length) of every event not yet acknowledged, in order.
        self._index: list[tuple] = []
        self.last_seq = 0
        if self.events_path.exists():
            offset = 0
            with open(self.events_path, "rb") as f:
                for line in f:
                    if not line.endswith(b"\n"):
                        break  # a torn last write from a crash: drop it, it was never acknowledged
                    seq = json.loads(line)["seq"]
                    self.last_seq = seq
                    if seq > self.acked:
                        self._index.append((seq, offset, len(line)))
                    offset += len(line)
            with open(self.events_path, "r+b") as f:
                f.truncate(offset)
        self._writer = open(self.events_path, "ab")
        self._offset = self._writer.tell()

    def append(self, event: dict[str, Any]) -> int:
        with self.lock:
            self.last_seq += 1
            event = {"seq": self.last_seq, **event}
            line = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            self._writer.write(line)
            self._writer.flush()
            self._index.append((self.last_seq, self._offset, len(line)))
            self._offset += len(line)
            return self.last_seq

    def unsent_bytes(self) -> int:
        with self.lock:
            return sum(length for _, _, length in self._index)

    def has_pending(self) -> bool:
        with self.lock:
            return bool(self._index)

    def batch(self, max_bytes: int = MAX_BATCH_BYTES) -> list[dict[str, Any]]:
        """The oldest unacknowledged events, at least one, up to about `max_bytes`."""
        with self.lock:
            picked, size = [], 0
            for entry in self._index:
                if picked and size + entry[2] > max_bytes:
                    break
                picked.append(entry)
                size += entry[2]
        if not picked:
            return []
        with open(self.events_path, "rb") as f:
            f.seek(picked[0][1])
            raw = f.read(picked[-1][1] + picked[-1][2] - picked[0][1])
        return [json.loads(line) for line in raw.splitlines()]

    def ack(self, through: int) -> None:
        with self.lock:
            if through <= self.acked:
                return
            self.acked = through
            self._index = [entry for entry in self._index if entry[0] > through]
            tmp = self.acked_path.with_suffix(".tmp")
            tmp.write_text(str(through))
            os.replace(tmp, self.acked_path)

    def set_finish(self, body: dict[str, Any]) -> None:
        with self.lock:
            self._writer.flush()
            os.fsync(self._writer.fileno())
        tmp = self.finish_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        os.replace(tmp, self.finish_path)

    def finish(self) -> dict[str, Any] | None:
        return json.loads(self.finish_path.read_text()) if self.finish_path.exists() else None

    def close(self) -> None:
        with self.lock:
            self._writer.close()

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class EventRecorder:
    """The `Reporter` a job runs with: turns runner callbacks into spooled events, coalescing log lines
    into chunks so a chatty step costs a few requests, not one per line."""

    def __init__(self, spool: EventSpool, *, wake: Callable[[], None] = lambda: None):
        self.spool = spool
        self.wake = wake
        self._lock = threading.Lock()
        self._log_step: int | None = None
        self._log_parts: list[str] = []
        self._log_size = 0
        self._log_since = 0.0
        self._log_at = ""
        self._log_stream = "stdout"

    def _append(self, event: dict[str, Any], *, urgent: bool = False) -> None:
        self.spool.append(event)
        if urgent or self.spool.unsent_bytes() >= SEND_EARLY_BYTES:
            self.wake()

    def _flush_log_locked(self) -> None:
        if self._log_parts:
            data = "".join(self._log_parts)
            self._log_parts, self._log_size = [], 0
            event = {"type": "log", "at": self._log_at, "step": self._log_step, "data": data}
            if self._log_stream != "stdout":
                event["stream"] = self._log_stream
            self._append(event)

    def flush_log(self, older_than: float = 0.0) -> None:
        with self._lock:
            if self._log_parts and time.monotonic() - self._log_since >= older_than:
                self._flush_log_locked()

    def job_started(self, *, timeout_minutes: float, steps: list[str] | None = None) -> None:
        value = int(timeout_minutes) if float(timeout_minutes).is_integer() else timeout_minutes
        event: dict[str, Any] = {"type": "job_started", "timeoutMinutes": value}
        if steps is not None:
            event["steps"] = [{"name": name} for name in steps]
        self._event(event)

    def step_started(self, *, step: int, name: str) -> None:
        self._event({"type": "step_started", "step": step, "name": name})

    def step_finished(self, *, step: int, name: str, status: str, exit_code: int | None, allowed: bool = False) -> None:
        event = {"type": "step_finished", "step": step, "name": name, "status": status, "exitCode": exit_code}
        if allowed:
            event["allowed"] = True
        self._event(event)

    def _event(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._flush_log_locked()  # keep log lines ahead of the step boundary that follows them
            self._append({"type": event.pop("type"), "at": utcnow_iso(), **event}, urgent=True)

    def log(self, *, step: int | None, data: str, stream: str = "stdout") -> None:
        with self._lock:
            if self._log_parts and (step != self._log_step or stream != self._log_stream):
                self._flush_log_locked()
            if not self._log_parts:
                self._log_step, self._log_since, self._log_at = step, time.monotonic(), utcnow_iso()
                self._log_stream = stream
            self._log_parts.append(data)
            self._log_size += len(data)
            if self._log_size >= LOG_CHUNK_BYTES:
                self._flush_log_locked()


class JobDelivery(threading.Thread):
    """Sends one job's spooled events in batches, then its `finish` once every event is acknowledged.

    `on_cancel` is called when the server asks to cancel (or forgot the job). `give_up` stops the thread
    without delivering (agent shutdown); the spool stays on disk for the next start.
    """

    def __init__(
        self,
        *,
        client: ServerClient,
        job_id: str,
        spool: EventSpool,
        recorder: EventRecorder | None = None,
        on_cancel: Callable[[], None] = lambda: None,
        backoff: Backoff | None = None,
    ):
        super().__init__(name=f"deliver-{job_id}", daemon=True)
        self.client = client
        self.job_id = job_id
        self.spool = spool
        self.recorder = recorder
        self.on_cancel = on_cancel
        self.backoff = backoff or Backoff()
        self.give_up = threading.Event()
        self.delivered = threading.Event()
        self._wake = threading.Event()
        self.finish_response: dict[str, Any] | None = None
        self._last_contact = time.monotonic()

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        try:
            self._loop()
        finally:
            if self.delivered.is_set():
                self.spool.remove()
            else:
                self.spool.close()

    def _loop(self) -> None:
        while not self.give_up.is_set():
            self._wake.wait(SEND_INTERVAL)
            self._wake.clear()
            if self.recorder is not None:
                self.recorder.flush_log(LOG_FLUSH_AGE)
            finish = self.spool.finish()
            if finish is not None and self.recorder is not None:
                self.recorder.flush_log()
            try:
                while self.spool.has_pending() and not self.give_up.is_set():
                    if not self._send_batch():
                        return  # the server forgot the job
                if finish is not None and not self.spool.has_pending():
                    self._send_finish(finish)
                    return
                if finish is None and time.monotonic() - self._last_contact >= CANCEL_POLL_SECONDS:
                    if not self._send_batch(poll=True):
                        return
                self.backoff.reset()
            except RetryableError as exc:
                delay = exc.pause(self.backoff)
                if exc.status == 401:
                    delay = max(delay, 5.0)
                log.warning("job %s: %s; retrying in %.1fs", self.job_id, exc, delay)
                self.give_up.wait(delay)

    def _send_batch(self, *, poll: bool = False) -> bool:
        events = [] if poll else self.spool.batch()
        try:
            answer = self.client.post_events(self.job_id, events)
            self._last_contact = time.monotonic()
        except ServerError as exc:
            if exc.status in (404, 409):
                log.warning("job %s: the server no longer takes events (%s); stopping the job", self.job_id, exc)
                self.on_cancel()
                self.delivered.set()
                return False
            self._last_contact = time.monotonic()
            if not events:
                log.warning("job %s: the server refused a cancel poll: %s", self.job_id, exc)
                return True
            # A batch the server refuses as malformed would be refused forever: record and move on.
            log.error(
                "job %s: the server refused events %s..%s: %s", self.job_id, events[0]["seq"], events[-1]["seq"], exc
            )
            self.spool.ack(events[-1]["seq"])
            return True
        through = answer.get("acceptedThrough")
        cancel = bool(answer.get("cancelRequested"))
        # The cancel is read first: a server that ended the job (cancelled, or failed it as lost while this
        # agent was frozen or cut off) takes no more events, and waiting for it to take them would loop forever
        # while the step runs on.
        if cancel:
            self.on_cancel()
        if isinstance(through, int) and events:
            self.spool.ack(through)
            if through < events[0]["seq"]:
                if cancel:
                    # The job is over on the server: these events have nowhere to go. Drop them so the finish
                    # (answered 409 if the server settled on another outcome) is sent and the spool cleared.
                    log.warning(
                        "job %s: the server ended the job; dropping events %s..%s it no longer takes",
                        self.job_id,
                        events[0]["seq"],
                        events[-1]["seq"],
                    )
                    self.spool.ack(events[-1]["seq"])
                    return True
                # The server has not taken the first event we sent: it wants something we no longer have, or
                # it is lagging; pause instead of spinning.
                raise RetryableError(f"server accepted through {through}, below {events[0]['seq']}")
        return True

    def _send_finish(self, finish: dict[str, Any]) -> None:
        try:
            self.finish_response = self.client.finish(
                self.job_id, status=finish["status"], exit_code=finish["exitCode"], error=finish["error"]
            )
        except ServerError as exc:
            if exc.status == 409:
                log.warning("job %s: the server already has a different final state: %s", self.job_id, exc.message)
            else:
                log.error("job %s: the server refused the finish: %s", self.job_id, exc)
        self.delivered.set()
