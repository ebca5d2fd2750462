"""Security headers and cookies: HTTPS-only with DEBUG off, and the pages' Content-Security-Policy."""

from __future__ import annotations

from .base import DEBUG, env
from .storage import DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Pages: scripts and styles only from static files of this origin (no inline code); data:
# images for Swagger UI's icons. connect-src also allows https: (http: when private storage
# endpoints are allowed) because the Files page PUTs uploads straight to the customer's bucket.
# No form-action: "Add to Slack" posts here and is redirected to Slack, which it would block.
DEPLITE_CONTENT_SECURITY_POLICY = env.str(
    "DEPLITE_CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"connect-src 'self' https:{' http:' if DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS else ''}; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
)
X_FRAME_OPTIONS = "DENY"
