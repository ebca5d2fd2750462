"""The ground every other settings module stands on: the one reader of the environment (`env`),
the paths, DEBUG and the secrets, the hosts, and the Django project itself (apps, middleware,
URLs, templates, static files)."""

from __future__ import annotations

import secrets
from pathlib import Path

import django
import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# The one reader of the environment. Setting names are their variables' names, and every
# duration is in seconds (its name says `_SECONDS`, except DESIGN's DEPLITE_UPLOAD_EXPIRY).
env = environ.Env()
VAR_DIR = Path(env.str("DEPLITE_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=True)


def _generated_once(name: str, make) -> str:
    """A development secret kept in var/ so restarts keep sessions and ciphertexts valid."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _secret(name: str, make) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off.")
    return _generated_once(name.lower(), make)


SECRET_KEY = _secret("SECRET_KEY", lambda: secrets.token_urlsafe(50))
# Fernet keys, newest first: the first encrypts, all decrypt (MultiFernet).
DEPLITE_ENCRYPTION_KEYS = [
    k.strip()
    for k in _secret("DEPLITE_ENCRYPTION_KEYS", lambda: Fernet.generate_key().decode()).split(",")
    if k.strip()
]

# The base of every link the product emits. Unset, the local server's own address on $PORT
# (`make run PORT=…` sets both), so a pasted agent snippet reaches the server that showed it.
DEPLITE_PUBLIC_URL = env.str("DEPLITE_PUBLIC_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}").rstrip(
    "/"
)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[DEPLITE_PUBLIC_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Django's form templates for the admin's own widget templates (FORM_RENDERER below).
    "django.forms",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    # Refresh tokens rotate and the old one is blacklisted; "log out everywhere" and a
    # password change blacklist every refresh token of the user.
    "rest_framework_simplejwt.token_blacklist",
    # Listed so its management commands (rotate_encryption_keys) are found.
    "deplite",
    "orgs",
    "storage",
    "triggers",
    "agents",
    "integrations",
    "notifications",
    "insights",
]

MIDDLEWARE = [
    # First: the request id and log context cover everything below, errors included.
    "deplite.middleware.RequestContextMiddleware",
    # Load-balancer probes and Prometheus, before host validation and the HTTPS redirect.
    "deplite.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (Swagger UI's local assets, htmx) served by the app itself in production.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "deplite.middleware.ApiBodyLimitMiddleware",
    # Django's session, user and messages middleware, skipped on API calls that carry their
    # own credentials (deplite.middleware.is_machine_api_call): the API never uses a session.
    "deplite.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "deplite.middleware.AuthenticationMiddleware",
    "deplite.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "deplite.middleware.ApiErrorMiddleware",
    "deplite.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "deplite.urls"
WSGI_APPLICATION = "deplite.wsgi.application"
ASGI_APPLICATION = "deplite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Forms and their widgets are rendered by Jinja2 from Django's own templates for it (django/forms/jinja2):
# the same HTML in about half the time of Django's engine (the environment page's rules form: ~5 ms of
# ~30). TemplatesSetting asks the engines in order: this one first, which holds only those templates, then
# Django's, which holds the pages, and the admin's and auth's own widget templates (no Jinja2 version; they
# include Django's form templates, hence `django.forms` among the apps). A page's template is looked up here
# first and missed: one stat of a file that is not there.
TEMPLATES.insert(
    0,
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [Path(django.__file__).resolve().parent / "forms" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {},
    },
)
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

# --- i18n, static ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps' static folders as well, so a deployment that skipped
# `collectstatic` still has working pages (collectstatic adds compression).
WHITENOISE_USE_FINDERS = True
