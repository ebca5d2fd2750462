"""OpenAPI description of the agent's request signature (drf-spectacular extension)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AgentSignatureScheme(OpenApiAuthenticationExtension):
    target_class = "agents.protocol.AgentSignatureAuthentication"
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
    target_class = "agents.protocol.JobTokenAuthentication"
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
