"""Reads other apps (notifications) and the outbox need from integrations: the installation a
message may be posted with, the chat conversation a job was started from; and the outbox's
recent failures the Integrations page shows."""

from __future__ import annotations

import uuid

from orgs.models import Organization

from .models import ChatCommand, Installation, MessageStatus, OutboxMessage


def installation_for_org(*, org_id: uuid.UUID, provider: str, external_id: str) -> Installation | None:
    """The org's own installation of that team, or None: a team linked to another org is
    never returned, so nothing is ever posted through another org's workspace."""
    return Installation.objects.filter(org_id=org_id, provider=provider, external_id=external_id).first()


def chat_command_for_job(*, job_id: uuid.UUID) -> ChatCommand | None:
    """The chat command that created a job (channel, thread or interaction token), or None for
    a job not started from chat. Its reply is an outbox message (`command.outbox_messages`)."""
    return ChatCommand.objects.select_related("installation").filter(job_id=job_id).first()


def recent_failures(*, org: Organization, limit: int = 10) -> list[OutboxMessage]:
    """The org's latest failed deliveries, newest first (the Integrations page shows them)."""
    return list(
        OutboxMessage.objects.filter(org=org, status=MessageStatus.FAILED)
        .select_related("job")
        .order_by("-updated_at", "-id")[:limit]
    )
