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
