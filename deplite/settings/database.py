"""The database: PostgreSQL through psycopg's pool when DATABASE_URL is set, else a SQLite file in var/."""

from __future__ import annotations

from .base import VAR_DIR, env

if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Reuse connections: a new PostgreSQL connection per request costs ~3x in
        # throughput. psycopg's pool rather than persistent connections because
        # persistent connections leak under ASGI (Django's docs say so).
        if env.bool("DATABASE_POOL", default=True):
            DATABASES["default"]["CONN_MAX_AGE"] = 0
            # A pooled connection is checked when handed out (deplite/postgresql/base.py), so after a
            # PostgreSQL restart the dead ones are replaced instead of each failing one request. Django's
            # own check (CONN_HEALTH_CHECKS) is a round trip per request; ours asks PostgreSQL only when
            # the idle socket shows the server has said or closed something.
            DATABASES["default"]["ENGINE"] = "deplite.postgresql"
            DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
            DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
                "min_size": env.int("DATABASE_POOL_MIN", default=1),
                "max_size": env.int("DATABASE_POOL_MAX", default=20),
                # Seconds a request waits for a free connection before it is answered 503.
                "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
            }
        else:
            DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)
            DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        # An unreachable database fails a request (and /readyz) in seconds, not the OS's minutes.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
        # Values bound by PostgreSQL rather than quoted into the text by psycopg, and a statement a
        # connection has run `prepare_threshold` times (psycopg's default) prepared: PostgreSQL then
        # parses and plans it once per connection and later gets only its values (README, Performance).
        # Off (None) behind a transaction-mode pooler that cannot carry prepared statements.
        DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = (
            5 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
        )
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "deplite.sqlite3",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
