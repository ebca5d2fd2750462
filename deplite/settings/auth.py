"""People and machines logging in: users and allauth, invitations, email, JWTs, and the login and
token rate limits (with the proxies whose client address they trust)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from .base import SECRET_KEY, env

AUTH_USER_MODEL = "orgs.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses while an account is rate-limited from this address (orgs/backends.py).
    "orgs.backends.LoginRateLimitBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_ADAPTER = "orgs.adapter.AccountAdapter"
# Logins are limited by Deplite's own per-account-and-address failure counts (orgs/ratelimit.py).
# allauth's per-address limits on every login attempt and every failure would lock out everyone
# behind one NAT; its other limits (signup, password reset) stay, on the same client address.
ACCOUNT_RATE_LIMITS = {"login": None, "login_failed": None}
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"

# An invitation not accepted within this many seconds expires; an admin invites again.
DEPLITE_INVITATION_EXPIRY_SECONDS = env.int("DEPLITE_INVITATION_EXPIRY_SECONDS", default=7 * 24 * 3600)

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Deplite <noreply@deplite.local>")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_TOKEN_LIFETIME_SECONDS", default=15 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_TOKEN_LIFETIME_SECONDS", default=7 * 24 * 3600)),
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

# Rate limits: (failures, window seconds). See orgs/ratelimit.py.
# Failed password logins per account and client address, and per address over all accounts.
DEPLITE_LOGIN_RATE = (env.int("DEPLITE_LOGIN_RATE", default=10), 60)
DEPLITE_LOGIN_ADDRESS_RATE = (env.int("DEPLITE_LOGIN_ADDRESS_RATE", default=100), 60)
# Failed bearer credentials per client address; past it a bad one is a 429, a valid one still passes.
DEPLITE_TOKEN_FAILURE_RATE = (env.int("DEPLITE_TOKEN_FAILURE_RATE", default=30), 60)
# Reverse proxies (CIDRs) whose X-Forwarded-For names the client; none by default, so the
# header is ignored and a client cannot choose the address its limits are counted under.
DEPLITE_TRUSTED_PROXIES = env.list("DEPLITE_TRUSTED_PROXIES", default=[])
for _cidr in DEPLITE_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"DEPLITE_TRUSTED_PROXIES: {_cidr!r} is not an address or CIDR.") from None
