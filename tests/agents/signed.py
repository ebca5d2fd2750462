"""A test client that speaks the agent protocol: every request signed like the agent does."""

from __future__ import annotations

import json

from django.test import Client

from agents import signing


def body_bytes(body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


class SignedAgent:
    def __init__(self, agent, secret: str | None = None, client: Client | None = None):
        self.agent = agent
        self.secret = secret if secret is not None else agent.secret
        self.client = client or Client()

    def header(self, method: str, path: str, body: bytes, **kwargs) -> str:
        return signing.signature_header(
            agent_id=str(self.agent.pk), secret=self.secret, method=method, path=path, body=body, **kwargs
        )

    def send(self, method: str, path: str, body: bytes, header: str | None):
        extra = {"HTTP_X_AGENT_SIGNATURE": header} if header is not None else {}
        return self.client.generic(method, path, body, content_type="application/json", **extra)

    def request(self, method: str, path: str, body=None):
        raw = body_bytes(body)
        return self.send(method, path, raw, self.header(method, path, raw))

    def post(self, path: str, body=None):
        return self.request("POST", path, {} if body is None else body)

    def get(self, path: str):
        return self.request("GET", path)

    # protocol shortcuts
    def heartbeat(self, **body):
        return self.post("/api/agent/heartbeat", {"hostname": "web-1", "version": "1.0.0", "workflows": [], **body})

    def claim(self, wait: int = 0):
        return self.post(f"/api/agent/jobs/claim?wait={wait}", {})

    def events(self, job_id, events):
        return self.post(f"/api/agent/jobs/{job_id}/events", {"events": events})

    def finish(self, job_id, status="succeeded", exit_code=0, error=None):
        return self.post(f"/api/agent/jobs/{job_id}/finish", {"status": status, "exitCode": exit_code, "error": error})
