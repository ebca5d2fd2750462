"""A stand-in for the Deplite agent protocol (DESIGN §4–§5), for testing the agent without Django.

It verifies every signature with its own implementation of the formula (not the agent's), keeps the
state in `FakeDeplite` so the HTTP side can be stopped and restarted on the same port (a server
outage), and records every request, event and finish so tests can assert exactly-once delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class _QuietServer(ThreadingHTTPServer):
    """An agent that hangs up mid-answer (a cut long poll, a stopped agent) is normal here."""

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


@dataclass
class FakeJob:
    id: str
    workflow: str
    ref: str = "main"
    params: dict = field(default_factory=dict)
    short_id: str = ""
    trigger_name: str = "deploy-trigger"
    input_files: list = field(default_factory=list)
    claimed_by: str | None = None
    accepted_through: int = 0
    events: list = field(default_factory=list)  # accepted events, in order, each exactly once
    finish: dict | None = None
    finish_calls: int = 0
    cancel_requested: bool = False
    gone: bool = False  # answer 404 to the agent from now on
    ended: bool = False  # the server ended the job (failed it as lost, …): no more events, finish is a 409
    job_token: str = ""  # issued at claim, dead once the job ended

    def claim_body(self) -> dict:
        body = self._claim_body()
        body["jobToken"] = self.job_token
        return body

    def _claim_body(self) -> dict:
        return {
            "id": self.id,
            "shortId": self.short_id,
            "workflow": self.workflow,
            "ref": self.ref,
            "params": self.params,
            "trigger": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.trigger_name)), "name": self.trigger_name},
            "inputFiles": self.input_files,
            "createdAt": "2026-01-01T00:00:00Z",
        }

    def log_text(self) -> str:
        return "".join(e["data"] for e in self.events if e["type"] == "log")

    def step_results(self) -> list:
        return [(e["step"], e["name"], e["status"], e["exitCode"]) for e in self.events if e["type"] == "step_finished"]


def expected_v1(secret: str, ts: str, nonce: str, method: str, path: str, body: bytes) -> str:
    message = f"v1\n{ts}\n{nonce}\n{method}\n{path}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class FakeDeplite:
    """The server's state; survives `stop()`/`start()` of its HTTP listener."""

    def __init__(self, agents: dict[str, str] | None = None):
        self.agents = dict(agents or {})  # agentId -> secret
        self.lock = threading.Condition()
        self.queue: list[str] = []
        self.jobs: dict[str, FakeJob] = {}
        self.files: dict[str, tuple[str, bytes]] = {}  # fileId -> (fileName, content)
        self.requests: list[dict] = []  # every request: method, path, status, headers, body
        self.nonces: set[str] = set()
        self.heartbeats: list[dict] = []
        self.drop_event_responses = 0  # process an events call, then hang up without answering
        self.finish_status_override: int | None = None
        # The next N signed requests are answered 503 with this Retry-After (an overloaded or degraded server).
        self.unavailable_answers = 0
        self.unavailable_retry_after = "5"
        # Output files (the presign/complete protocol of issue 22) and the bucket the PUTs land in.
        self.outputs: dict[str, dict] = {}  # fileId -> {jobId, name, size, sha256, contentType, status}
        self.bucket: dict[str, bytes] = {}  # fileId -> what the PUT stored
        self.max_outputs = 100
        self.max_upload_size = 1 << 40
        self.output_binding = True  # False: the job has no binding to upload to (409 no_output_binding)
        self.bucket_corrupts = False  # True: the bucket gets a body that differs from the one sent
        self.bucket_unavailable = 0  # the next N PUTs are answered 503 (a bucket having a bad moment)
        self.httpd: ThreadingHTTPServer | None = None
        self.port = 0
        self.connections: set = set()

    # -- test-side API ---------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_agent(self) -> tuple[str, str]:
        agent_id, secret = str(uuid.uuid4()), "ags_" + uuid.uuid4().hex + uuid.uuid4().hex
        self.agents[agent_id] = secret
        return agent_id, secret

    def add_file(self, name: str, content: bytes) -> str:
        file_id = str(uuid.uuid4())
        self.files[file_id] = (name, content)
        return file_id

    def queue_job(self, workflow: str, *, ref: str = "main", params: dict | None = None, input_params=()) -> FakeJob:
        job_id = str(uuid.uuid4())
        job = FakeJob(
            id=job_id, workflow=workflow, ref=ref, params=dict(params or {}), short_id=str(len(self.jobs) + 1)
        )
        for param in input_params:
            file_id = job.params[param]
            name, content = self.files[file_id]
            job.input_files.append({"param": param, "fileId": file_id, "fileName": name, "size": len(content)})
        with self.lock:
            self.jobs[job_id] = job
            self.queue.append(job_id)
            self.lock.notify_all()
        return job

    def running_job(self, workflow: str = "deploy") -> FakeJob:
        """A job as if an agent claimed it and runs it now: its token is live (for a step's CLI calls)."""
        job = FakeJob(id=str(uuid.uuid4()), workflow=workflow, short_id=str(len(self.jobs) + 1))
        job.job_token = "djt_" + uuid.uuid4().hex
        with self.lock:
            self.jobs[job.id] = job
        return job

    def job_outputs(self, job: FakeJob) -> list[dict]:
        with self.lock:
            return [dict(o) for o in self.outputs.values() if o["jobId"] == job.id]

    def request_cancel(self, job: FakeJob) -> None:
        with self.lock:
            job.cancel_requested = True

    def end_job(self, job: FakeJob) -> None:
        """What the real server does to a job it failed (agent lost) or cancelled: it takes no more events and
        answers every report with cancelRequested, and the finish with a 409."""
        with self.lock:
            job.ended = True
            job.cancel_requested = True

    def wait_for(self, predicate, timeout: float = 20.0, message: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {message}")
                self.lock.wait(min(left, 0.1))

    def held_in_heartbeats(self) -> list[list[str] | None]:
        """The `runningJobs` of every heartbeat so far, in order (None: the key was absent)."""
        with self.lock:
            return [(beat or {}).get("runningJobs") for beat in self.heartbeats]

    def wait_finished(self, job: FakeJob, timeout: float = 30.0) -> dict:
        self.wait_for(lambda: job.finish is not None, timeout, f"job {job.id} to finish")
        return job.finish

    def start(self) -> FakeDeplite:
        state = self

        class Handler(_Handler):
            fake = state

        self.httpd = _QuietServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """An outage: stop listening and cut every open (keep-alive or long-poll) connection."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- protocol --------------------------------------------------------------------------------------------
    def authenticate(self, method: str, path: str, headers, body: bytes) -> str | None:
        value = headers.get("X-Agent-Signature") or ""
        try:
            parts = dict(item.split("=", 1) for item in value.split(","))
            agent_id, ts, nonce, v1 = parts["agent"], parts["ts"], parts["nonce"], parts["v1"]
        except (ValueError, KeyError):
            return None
        secret = self.agents.get(agent_id)
        if secret is None or abs(time.time() - int(ts)) > 300 or len(nonce) < 16:
            return None
        if not hmac.compare_digest(expected_v1(secret, ts, nonce, method, path, body), v1):
            return None
        with self.lock:
            if nonce in self.nonces:
                return None
            self.nonces.add(nonce)
        return agent_id

    def handle(self, method: str, path: str, headers, body: bytes) -> tuple[int, Any]:
        url = urlsplit(path)
        parts = url.path.strip("/").split("/")
        if method == "GET" and parts[:1] == ["s3"]:
            name, content = self.files[parts[1]]
            return 200, content
        if method == "PUT" and parts[:1] == ["s3-put"]:
            return self._bucket_put(parts[1], headers, body)
        bearer = (headers.get("Authorization") or "").removeprefix("Bearer ")
        if bearer and parts[:3] == ["api", "agent", "files"] and parts[4:] == ["download-url"] and method == "GET":
            return self._job_token_download_url(bearer, parts[3])
        if bearer and parts[:3] == ["api", "agent", "jobs"] and parts[4:5] == ["outputs"] and method == "POST":
            return self._outputs_call(bearer, parts[3], parts[5:], body)
        agent_id = self.authenticate(method, path, headers, body)
        if agent_id is None:
            return 401, {"error": {"code": "bad_signature", "message": "Invalid agent signature.", "details": {}}}
        with self.lock:
            if self.unavailable_answers > 0:
                self.unavailable_answers -= 1
                return 503, {"error": {"code": "service_unavailable", "message": "Try later.", "details": {}}}
        data = json.loads(body) if body else None
        if parts == ["api", "agent", "heartbeat"] and method == "POST":
            held = (data or {}).get("runningJobs", [])
            if not isinstance(held, list) or not all(isinstance(job_id, str) for job_id in held):
                return 400, {"error": {"code": "validation_failed", "message": "runningJobs", "details": {}}}
            with self.lock:
                self.heartbeats.append(data)
                self.lock.notify_all()
            return 200, {"agentId": agent_id, "name": "test-agent", "labels": [], "serverTime": time.time()}
        if parts == ["api", "agent", "jobs", "claim"] and method == "POST":
            wait = float(parse_qs(url.query).get("wait", ["0"])[0])
            deadline = time.monotonic() + wait
            with self.lock:
                while not self.queue and time.monotonic() < deadline:
                    self.lock.wait(min(0.05, max(0.0, deadline - time.monotonic())))
                if not self.queue:
                    return 204, None
                job = self.jobs[self.queue.pop(0)]
                job.claimed_by = agent_id
                job.job_token = "djt_" + uuid.uuid4().hex
                self.lock.notify_all()
                return 200, job.claim_body()
        if parts[:3] == ["api", "agent", "jobs"] and len(parts) == 5 and method == "POST":
            job = self.jobs.get(parts[3])
            if job is None or job.claimed_by != agent_id or job.gone:
                return 404, {"error": {"code": "not_found", "message": "No such job.", "details": {}}}
            if parts[4] == "events":
                if job.ended:
                    with self.lock:
                        return 200, {"acceptedThrough": job.accepted_through, "cancelRequested": True}
                return self._events(job, data)
            if parts[4] == "finish":
                return self._finish(job, data)
        if parts[:3] == ["api", "agent", "files"] and parts[4:] == ["download-url"] and method == "GET":
            return self._download_url(parts[3])
        return 404, {"error": {"code": "not_found", "message": "No such endpoint.", "details": {}}}

    def _download_url(self, file_id: str) -> tuple[int, Any]:
        name, content = self.files[file_id]
        return 200, {
            "downloadUrl": f"{self.url}/s3/{file_id}?X-Amz-Signature=fake",
            "expiresInSeconds": 300,
            "fileName": name,
            "size": len(content),
        }

    def _job_token_download_url(self, token: str, file_id: str) -> tuple[int, Any]:
        with self.lock:
            job = next((j for j in self.jobs.values() if j.job_token and j.job_token == token), None)
            live = job is not None and job.finish is None and not job.ended and not job.gone
            if not live:
                return 401, {"error": {"code": "authentication_failed", "message": "Invalid job token.", "details": {}}}
            if file_id not in {f["fileId"] for f in job.input_files}:
                return 404, {"error": {"code": "not_found", "message": "File not found.", "details": {}}}
        return self._download_url(file_id)

    @staticmethod
    def _error(status: int, code: str, message: str) -> tuple[int, Any]:
        return status, {"error": {"code": code, "message": message, "details": {}}}

    def _outputs_call(self, token: str, job_id: str, rest: list[str], body: bytes) -> tuple[int, Any]:
        with self.lock:
            job = next((j for j in self.jobs.values() if j.job_token and j.job_token == token), None)
            if job is None or job.finish is not None or job.ended or job.gone:
                return self._error(401, "invalid_job_token", "The job token is not valid (the job ended?).")
            if job.id != job_id:
                return self._error(404, "not_found", "Not found.")
            if not rest:
                return self._output_slot(job, json.loads(body or b"{}"))
            record = self.outputs.get(rest[0])
            if rest[1:] != ["complete"] or record is None or record["jobId"] != job.id:
                return self._error(404, "not_found", "Not found.")
            stored = self.bucket.get(rest[0])
            if (
                stored is None
                or len(stored) != record["size"]
                or hashlib.sha256(stored).hexdigest() != record["sha256"]
            ):
                record["status"] = "failed"
                return self._error(
                    409, "upload_incomplete", "The object is missing or differs from what was announced."
                )
            record["status"] = "available"
            self.lock.notify_all()
            return 200, {k: record[k] for k in ("fileId", "name", "size", "sha256", "status")}

    def _output_slot(self, job: FakeJob, data: dict) -> tuple[int, Any]:
        name, size, digest = data.get("name"), data.get("size"), data.get("sha256")
        if not isinstance(name, str) or not name or "/" in name or len(name) > 255:
            return self._error(400, "validation_failed", "name: a file name, without a directory.")
        if not isinstance(size, int) or size < 0 or not isinstance(digest, str) or len(digest) != 64:
            return self._error(400, "validation_failed", "size and sha256 are required.")
        if not self.output_binding:
            return self._error(
                409, "no_output_binding", "No storage binding for outputs: set the trigger's outputBindingId."
            )
        if sum(1 for o in self.outputs.values() if o["jobId"] == job.id) >= self.max_outputs:
            return self._error(409, "too_many_outputs", f"A job keeps at most {self.max_outputs} output files.")
        if size > self.max_upload_size:
            return self._error(413, "file_too_large", f"Files are limited to {self.max_upload_size} bytes.")
        file_id = str(uuid.uuid4())
        content_type = data.get("contentType") or "application/octet-stream"
        self.outputs[file_id] = {
            "fileId": file_id,
            "jobId": job.id,
            "name": name,
            "size": size,
            "sha256": digest,
            "contentType": content_type,
            "status": "pending",
        }
        checksum = base64.b64encode(bytes.fromhex(digest)).decode()
        return 201, {
            "fileId": file_id,
            "uploadUrl": f"{self.url}/s3-put/{file_id}?X-Amz-Signature=fake",
            "method": "PUT",
            "headers": {"Content-Type": content_type, "x-amz-checksum-sha256": checksum},
        }

    def _bucket_put(self, file_id: str, headers, body: bytes) -> tuple[int, Any]:
        """The presigned PUT, checked as S3 checks it: the signed headers present, the body matching the
        signed checksum (BadDigest otherwise)."""
        with self.lock:
            record = self.outputs.get(file_id)
            if record is None or headers.get("Content-Type") != record["contentType"]:
                return 403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>"
            if self.bucket_unavailable > 0:
                self.bucket_unavailable -= 1
                return 503, b"<Error><Code>SlowDown</Code></Error>"
            if self.bucket_corrupts:
                body = body[:-1] + bytes([body[-1] ^ 1]) if body else b"x"
            if headers.get("x-amz-checksum-sha256") != base64.b64encode(hashlib.sha256(body).digest()).decode():
                return 400, b"<Error><Code>BadDigest</Code></Error>"
            self.bucket[file_id] = body
            return 200, None

    def _events(self, job: FakeJob, data: dict) -> tuple[int, Any]:
        with self.lock:
            for event in data["events"]:
                if event["seq"] <= job.accepted_through:
                    continue  # a retry of something already stored: ignored, as the real server does
                if event["seq"] != job.accepted_through + 1:
                    break  # a gap: take nothing past it
                job.events.append(event)
                job.accepted_through = event["seq"]
            self.lock.notify_all()
            return 200, {"acceptedThrough": job.accepted_through, "cancelRequested": job.cancel_requested}

    def _finish(self, job: FakeJob, data: dict) -> tuple[int, Any]:
        with self.lock:
            job.finish_calls += 1
            if job.ended:
                self.lock.notify_all()
                return 409, {"error": {"code": "job_already_finished", "message": "Already failed.", "details": {}}}
            if self.finish_status_override:
                return self.finish_status_override, {"error": {"code": "conflict", "message": "x", "details": {}}}
            if job.finish is not None and job.finish != data:
                return 409, {"error": {"code": "conflict", "message": "Job already finished.", "details": {}}}
            job.finish = data
            self.lock.notify_all()
            return 200, {"id": job.id, "status": data["status"]}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeDeplite
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.fake.connections.add(self.connection)

    def finish(self) -> None:
        self.fake.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.fake.handle(method, self.path, self.headers, body)
        with self.fake.lock:
            self.fake.requests.append(
                {
                    "method": method,
                    "path": self.path,
                    "status": status,
                    "headers": dict(self.headers),
                    "body": body,
                    "at": time.monotonic(),
                }
            )
            drop = self.path.endswith("/events") and status == 200 and self.fake.drop_event_responses > 0
            if drop:
                self.fake.drop_event_responses -= 1
        if drop:
            self.close_connection = True
            return
        raw = payload if isinstance(payload, bytes) else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        if payload is not None:
            self.send_header(
                "Content-Type", "application/octet-stream" if isinstance(payload, bytes) else "application/json"
            )
        self.send_header("Content-Length", str(len(raw)))
        if status == 503:
            self.send_header("Retry-After", self.fake.unavailable_retry_after)
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")
