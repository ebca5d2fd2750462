"""One password-login limit for every way in: the API's token endpoint, the site login
(allauth) and /admin/login/ all end in `django.contrib.auth.authenticate`.

`LoginRateLimitBackend` is the first backend: while an account is limited from this
address it stops authentication (PermissionDenied), so no later backend checks the
password. Every failed authentication — refused here or a wrong password — is counted by
the `user_login_failed` receiver.
"""

from __future__ import annotations

from django.contrib.auth.backends import BaseBackend, ModelBackend
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver

from . import ratelimit


def _account(credentials: dict) -> str:
    return str(credentials.get("email") or credentials.get("username") or credentials.get("login") or "")


class LoginRateLimitBackend(BaseBackend):
    def authenticate(self, request, **credentials):
        if request is not None and ratelimit.login_limited(request, _account(credentials)):
            raise PermissionDenied("Too many failed logins.")
        return None

    def get_user(self, user_id):
        # Sessions made with `force_login` (tests, tools) name the first backend: load users
        # as the model backend does.
        return ModelBackend().get_user(user_id)


@receiver(user_login_failed)
def count_failed_login(sender, credentials, request=None, **kwargs):
    if request is not None:
        ratelimit.login_failed(request, _account(credentials))
