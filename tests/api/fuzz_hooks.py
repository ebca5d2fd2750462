"""Schemathesis hooks for the schema fuzz run (tests/api/test_schema_fuzz.py), loaded by the
`schemathesis run` process it starts (config key `hooks`).

The agent protocol is authenticated by a signature over the exact bytes sent (DESIGN §5), which
no static header can carry: each request to `/api/agent/...` is signed here, once requests has
prepared it, with the seeded agent's id and secret (`DEPLITE_FUZZ_AGENT_ID` /
`DEPLITE_FUZZ_AGENT_SECRET`), in place of the placeholder value schemathesis generated for the
header. Requests that leave the header out on purpose (missing-credential checks) or whose
header is the invalid part of a negative case are sent exactly as generated.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import requests
import schemathesis
from deplite_agent.signing import signature_header
from schemathesis.core.parameters import ParameterLocation

AGENT_PREFIX = "/api/agent/"


class AgentSignature(requests.auth.AuthBase):
    def __init__(self, agent_id: str, secret: str):
        self.agent_id, self.secret = agent_id, secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if "X-Agent-Signature" not in request.headers:  # left out on purpose: send it unsigned
            return request
        url = urlsplit(request.url)
        path = url.path + (f"?{url.query}" if url.query else "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        request.headers["X-Agent-Signature"] = signature_header(
            agent_id=self.agent_id, secret=self.secret, method=request.method, path=path, body=body
        )
        return request


def _headers_are_the_negative_part(case) -> bool:
    meta = case.meta
    component = meta.components.get(ParameterLocation.HEADER) if meta is not None else None
    return component is not None and component.mode.is_negative


@schemathesis.hook
def before_call(context, case, kwargs):
    agent_id = os.environ.get("DEPLITE_FUZZ_AGENT_ID")
    if (
        agent_id
        and case.operation.path.startswith(AGENT_PREFIX)
        and "auth" not in kwargs
        and not _headers_are_the_negative_part(case)
    ):
        kwargs["auth"] = AgentSignature(agent_id, os.environ["DEPLITE_FUZZ_AGENT_SECRET"])
