"""allauth's account adapter, on Deplite's own login limit and client address
(orgs.ratelimit), so the site login, the admin and the API share one policy."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter

from . import ratelimit
from .backends import _account


class AccountAdapter(DefaultAccountAdapter):
    def pre_authenticate(self, request, **credentials):
        # allauth's own login_failed limit counts per address across accounts (10/min by
        # default): everyone behind one NAT would be locked out by one person's typos.
        if ratelimit.login_limited(request, _account(credentials)):
            raise self.validation_error("too_many_login_attempts")

    def get_client_ip(self, request) -> str:
        return ratelimit.client_ip(request) or super().get_client_ip(request)
