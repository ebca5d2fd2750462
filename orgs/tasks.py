"""Celery tasks for organisations and accounts: the invitation email, the purge of expired login tokens."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.core.mail import send_mail
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from deplite.links import absolute_url

from .models import Invitation

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=3,
    ignore_result=True,
)
def send_invitation_email(invitation_id: str) -> None:
    """Mail an invitation. The invitation row stands either way: the person still finds it on
    their dashboard once logged in; the mail is a courtesy, retried for a while if the mail
    server is away."""
    invitation = Invitation.objects.select_related("org").filter(pk=invitation_id, accepted_at=None).first()
    if invitation is None:
        return
    send_mail(
        subject=f"You are invited to {invitation.org.name} on Deplite",
        message=(
            f"You have been invited to join {invitation.org.name} on Deplite as {invitation.role}.\n\n"
            f"Log in (or sign up) with this email address, confirm it, and accept the invitation at:\n"
            f"{absolute_url('dashboard')}\n\n"
            f"The invitation is valid until {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


@shared_task(ignore_result=True)
def expired_refresh_tokens_purge() -> int:
    """Beat, daily: forget API refresh tokens past their expiry (simplejwt's `flushexpiredtokens`).

    Every login and every rotation records its refresh token, and every rotation blacklists the old
    one, so the two tables grow with use; an expired token is refused on its own expiry anyway."""
    deleted, _ = OutstandingToken.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
