"""Logins end: refresh tokens rotate, and a password change or "log out everywhere" ends
every refresh token, access token and web session of the user (issue 11 item 5)."""

from orgs.models import User


def _login(api, email="owner@acme.test", password="correct-horse-battery"):  # noqa: S107 (the fixture password)
    response = api.anonymous().post("/api/auth/token", {"email": email, "password": password}, format="json")
    assert response.status_code == 200
    return response.json()


def _refresh(api, refresh):
    return api.anonymous().post("/api/auth/token/refresh", {"refresh": refresh}, format="json")


def test_a_refresh_token_works_once_and_its_answer_carries_the_next(api, owner):
    pair = _login(api)
    first = _refresh(api, pair["refresh"])
    assert first.status_code == 200
    assert first.json()["refresh"] != pair["refresh"]
    replay = _refresh(api, pair["refresh"])
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "authentication_failed"
    assert _refresh(api, first.json()["refresh"]).status_code == 200


def test_a_password_change_ends_every_refresh_and_access_token(api, owner):
    laptop, phone = _login(api), _login(api)
    user = User.objects.get(pk=owner.pk)
    user.set_password("a-new-Long-pass-42")
    user.save()
    assert _refresh(api, laptop["refresh"]).status_code == 401
    assert _refresh(api, phone["refresh"]).status_code == 401
    api.client.credentials(HTTP_AUTHORIZATION=f"Bearer {phone['access']}")
    assert api.get("/api/orgs").status_code == 401
    fresh = _login(api, password="a-new-Long-pass-42")
    assert _refresh(api, fresh["refresh"]).status_code == 200


def test_log_out_everywhere_endpoint_ends_all_logins(api, owner, client):
    laptop, phone = _login(api), _login(api)
    client.force_login(owner)
    assert client.get("/orgs/acme/").status_code == 200

    api.client.credentials(HTTP_AUTHORIZATION=f"Bearer {laptop['access']}")
    assert api.post("/api/auth/logout-everywhere").status_code == 204

    assert _refresh(api, laptop["refresh"]).status_code == 401
    assert _refresh(api, phone["refresh"]).status_code == 401
    api.client.credentials(HTTP_AUTHORIZATION=f"Bearer {phone['access']}")
    assert api.get("/api/orgs").status_code == 401
    # The web session in another browser is over too.
    assert client.get("/orgs/acme/").status_code == 302
    assert _refresh(api, _login(api)["refresh"]).status_code == 200


def test_log_out_everywhere_button_on_the_page(api, owner, client):
    pair = _login(api)
    client.force_login(owner)
    page = client.get("/orgs/acme/").content.decode()
    assert "Log out everywhere" in page
    response = client.post("/accounts/logout-everywhere/")
    assert response.status_code == 302 and response.url == "/accounts/login/"
    assert client.get("/orgs/acme/").status_code == 302
    assert _refresh(api, pair["refresh"]).status_code == 401


def test_an_api_token_cannot_log_out_everywhere(api, org_token):
    _, raw = org_token
    assert api.as_token(raw).post("/api/auth/logout-everywhere").status_code == 403


def test_refresh_of_a_deleted_user_is_401_not_500(api, member):
    pair = _login(api, email="member@acme.test")
    User.objects.filter(pk=member.pk).delete()
    response = _refresh(api, pair["refresh"])
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_the_daily_purge_forgets_expired_refresh_tokens_and_their_blacklist_rows(api, owner, settings):
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
    from rest_framework_simplejwt.tokens import UntypedToken

    from orgs.tasks import expired_refresh_tokens_purge

    old, current = _login(api), _login(api)
    assert _refresh(api, old["refresh"]).status_code == 200  # rotated: the old one is blacklisted
    assert BlacklistedToken.objects.count() == 1
    live = OutstandingToken.objects.count()
    # The old token's expiry passes.
    jti = UntypedToken(old["refresh"])["jti"]
    assert OutstandingToken.objects.filter(jti=jti).update(expires_at=timezone.now() - timedelta(seconds=1)) == 1
    assert "refresh-tokens-purge" in settings.CELERY_BEAT_SCHEDULE
    assert expired_refresh_tokens_purge.delay().get() == 2  # the token and its blacklist row
    assert OutstandingToken.objects.count() == live - 1
    assert BlacklistedToken.objects.count() == 0
    assert _refresh(api, current["refresh"]).status_code == 200
