"""OpenAPI description of the agent protocol: its request signature (drf-spectacular extension)
and the long-poll claim, which is not a DRF view (a preprocessing hook)."""

from django.urls import reverse
from drf_spectacular.extensions import OpenApiAuthenticationExtension


def document_claim(endpoints: list) -> list:
    """drf-spectacular PREPROCESSING_HOOKS entry: `POST /api/agent/jobs/claim`, described by
    `agents.protocol.claim.ClaimSchema` (the enumerator skips plain Django views such as `claim_view`)."""
    from .protocol.claim import ClaimSchema

    path = reverse("agent-claim")
    return [*endpoints, (path, f"^{path.lstrip('/')}$", "POST", ClaimSchema.as_view())]


class AgentSignatureScheme(OpenApiAuthenticationExtension):
    target_class = "agents.protocol.authentication.AgentSignatureAuthentication"
    name = "agentSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Agent-Signature",
            "description": (
                "agent=<agentId>,ts=<unix seconds>,nonce=<16+ hex>,v1=<hex>; v1 = HMAC-SHA256(secret, "
                '"v1\\n{ts}\\n{nonce}\\n{METHOD}\\n{path with query}\\n{sha256 hex of body}")'
            ),
        }


class JobTokenScheme(OpenApiAuthenticationExtension):
    target_class = "agents.protocol.authentication.JobTokenAuthentication"
    name = "jobToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "DEPLITE_JOB_TOKEN (djt_…), a running job's own credential as its steps have it: only the "
                "download URL of that job's input files, only while the job runs."
            ),
        }
