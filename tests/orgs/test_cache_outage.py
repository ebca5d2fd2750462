"""With Redis gone, authenticated API calls keep working: rate limits fail open."""

import pytest
from django.core.cache import caches

from tests.factories import make_token


@pytest.fixture
def dead_redis_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    # Django's setting_changed handler rebuilds the cache handlers from the new setting.
    assert caches["default"].__class__.__name__ == "RedisCache"


def test_token_auth_and_login_work_while_the_cache_is_down(api, owner, org_a, dead_redis_cache, caplog):
    _, raw = make_token(org_a)
    assert api.as_token(raw).get("/api/orgs/acme").status_code == 200
    bad = api.anonymous().post("/api/auth/token", {"email": "owner@acme.test", "password": "nope"}, format="json")
    assert bad.status_code == 401
    good = api.post("/api/auth/token", {"email": "owner@acme.test", "password": "correct-horse-battery"}, format="json")
    assert good.status_code == 200
    assert "cannot reach the cache" in caplog.text
