"""allauth's account adapter, on Deplite's own login limit and client address
(orgs.ratelimit), so the site login, the admin and the API share one policy."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter

from deplite.links import on_public_url, public_base_url

from . import ratelimit
from .backends import _account


@dataclass(frozen=True)
class _PublicSite:
    """What allauth's mails say as `current_site` (name and domain)."""

    name: str
    domain: str


class AccountAdapter(DefaultAccountAdapter):
    def pre_authenticate(self, request, **credentials):
        # allauth's own login_failed limit counts per address across accounts (10/min by
        # default): everyone behind one NAT would be locked out by one person's typos.
        if ratelimit.login_limited(request, _account(credentials)):
            raise self.validation_error("too_many_login_attempts")

    def get_client_ip(self, request) -> str:
        return ratelimit.client_ip(request) or super().get_client_ip(request)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # allauth builds its links (password reset, address confirmation, sign-up) and the site
        # name from the request's Host header, which the client chooses: a reset link sent for
        # a request with `Host: evil.example` would hand the key to that host. Every mail
        # links to DEPLITE_PUBLIC_URL instead.
        context = {
            key: on_public_url(value) if key.endswith("_url") and isinstance(value, str) else value
            for key, value in context.items()
        }
        context["current_site"] = _PublicSite(name="Deplite", domain=urlsplit(public_base_url()).netloc)
        super().send_mail(template_prefix, email, context)
