"""Trigger create, update and delete (the API, the pages and, next, chat set-up call these)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction

from deplite.errors import Conflict, ValidationFailed
from orgs.actors import Actor
from orgs.models import Organization
from orgs.services import audit_record
from storage.models import StorageBinding

from ..models import ChatRunPolicy, Environment, NotifyOn, NotifyProvider, Trigger, TriggerType
from .notify_target import new_notify_secret

# `trigger_update(output_binding_id=KEEP)`: leave the output binding as it is (None clears it).
KEEP = object()


def trigger_create(
    *,
    org: Organization,
    actor: Actor,
    name: str,
    workflow: str,
    type: str = TriggerType.WEBHOOK,  # noqa: A002 (the model's field name)
    agent_labels: list[str] | None = None,
    default_ref: str = "main",
    enabled: bool = True,
    repository_url: str = "",
    chat_provider: str = "",
    chat_team_id: str = "",
    chat_channel_id: str = "",
    chat_keyword: str = "",
    chat_run_policy: str = ChatRunPolicy.MEMBERS,
    notify_provider: str = "",
    notify_team_id: str = "",
    notify_channel_id: str = "",
    notify_on: str = NotifyOn.ALWAYS,
    notify_url: str = "",
    output_binding_id: uuid.UUID | None = None,
    environment_name: str | None = None,
) -> Trigger:
    """Create a trigger from validated values (triggers.rules / the API's TriggerInput).
    `environment_name`: the org's environment its jobs deploy to (blank or None: none). A webhook
    notify target gets its signing secret here (`trigger.notify_secret`, for the answer to show once)."""
    _check_output_binding(org=org, binding_id=output_binding_id)
    environment = _environment(org=org, name=environment_name)
    try:
        with transaction.atomic():
            trigger = Trigger.objects.create(
                org=org,
                created_by=actor.user,
                **actor.stamp(),
                name=name,
                type=type,
                workflow=workflow,
                agent_labels=list(agent_labels or []),
                default_ref=default_ref,
                enabled=enabled,
                repository_url=repository_url,
                chat_provider=chat_provider,
                chat_team_id=chat_team_id,
                chat_channel_id=chat_channel_id,
                chat_keyword=chat_keyword,
                chat_run_policy=chat_run_policy,
                notify_provider=notify_provider,
                notify_team_id=notify_team_id,
                notify_channel_id=notify_channel_id,
                notify_on=notify_on,
                notify_url=notify_url,
                notify_secret=new_notify_secret() if notify_provider == NotifyProvider.WEBHOOK else "",
                output_binding_id=output_binding_id,
                environment=environment,
            )
            audit_record(
                org=org,
                actor=actor,
                action="trigger.created",
                target=trigger,
                data={
                    "name": trigger.name,
                    "type": trigger.type,
                    "workflow": trigger.workflow,
                    **({"environment": environment.name} if environment else {}),
                },
            )
    except IntegrityError:
        raise _keyword_taken(
            org=org,
            fields={
                "chat_provider": chat_provider,
                "chat_team_id": chat_team_id,
                "chat_channel_id": chat_channel_id,
                "chat_keyword": chat_keyword,
            },
        ) from None
    return trigger


def trigger_update(
    *,
    trigger: Trigger,
    actor: Actor,
    name: str | None = None,
    type: str | None = None,  # noqa: A002 (the model's field name)
    workflow: str | None = None,
    agent_labels: list[str] | None = None,
    default_ref: str | None = None,
    enabled: bool | None = None,
    repository_url: str | None = None,
    chat_provider: str | None = None,
    chat_team_id: str | None = None,
    chat_channel_id: str | None = None,
    chat_keyword: str | None = None,
    chat_run_policy: str | None = None,
    notify_provider: str | None = None,
    notify_team_id: str | None = None,
    notify_channel_id: str | None = None,
    notify_on: str | None = None,
    notify_url: str | None = None,
    output_binding_id: uuid.UUID | None | object = KEEP,
    environment_name: str | None | object = KEEP,
) -> Trigger:
    """Change the given fields (None: leave as is; for `output_binding_id` and `environment_name`,
    None (or a blank name) clears it and KEEP leaves it). Nothing changed, nothing written. A trigger
    that starts notifying a webhook gets its signing secret (kept when it stops: jobs created before
    still sign with it); a new webhook URL is enabled again if the old one had been disabled."""
    given = {
        "name": name,
        "type": type,
        "workflow": workflow,
        "agent_labels": agent_labels,
        "default_ref": default_ref,
        "enabled": enabled,
        "repository_url": repository_url,
        "chat_provider": chat_provider,
        "chat_team_id": chat_team_id,
        "chat_channel_id": chat_channel_id,
        "chat_keyword": chat_keyword,
        "chat_run_policy": chat_run_policy,
        "notify_provider": notify_provider,
        "notify_team_id": notify_team_id,
        "notify_channel_id": notify_channel_id,
        "notify_on": notify_on,
        "notify_url": notify_url,
    }
    changed = {k: v for k, v in given.items() if v is not None and getattr(trigger, k) != v}
    if changed.get("notify_provider") == NotifyProvider.WEBHOOK and not trigger.notify_secret:
        changed["notify_secret"] = new_notify_secret()
    if "notify_url" in changed and trigger.notify_disabled_at is not None:
        changed.update(notify_disabled_at=None, notify_disabled_reason="")
    if output_binding_id is not KEEP and output_binding_id != trigger.output_binding_id:
        _check_output_binding(org=trigger.org, binding_id=output_binding_id)
        changed["output_binding_id"] = output_binding_id
    if environment_name is not KEEP:
        environment = _environment(org=trigger.org, name=environment_name)
        if (environment.pk if environment else None) != trigger.environment_id:
            changed["environment"] = environment
    if not changed:
        return trigger
    try:
        with transaction.atomic():
            for field, value in changed.items():
                setattr(trigger, field, value)
            trigger.save()
            audit_record(
                org=trigger.org,
                actor=actor,
                action="trigger.updated",
                target=trigger,
                data={
                    "fields": sorted(changed),
                    **(
                        {"environment": trigger.environment.name if trigger.environment else None}
                        if "environment" in changed
                        else {}
                    ),
                },
            )
    except IntegrityError:
        trigger.refresh_from_db()
        wanted = {**_chat_fields(trigger), **{k: v for k, v in changed.items() if k in _CHAT_FIELDS}}
        raise _keyword_taken(org=trigger.org, fields=wanted, exclude=trigger.pk) from None
    return trigger


def trigger_delete(*, trigger: Trigger, actor: Actor) -> None:
    """Delete a trigger. Its jobs stay (they carry the trigger's name and workflow)."""
    with transaction.atomic():
        audit_record(
            org=trigger.org, actor=actor, action="trigger.deleted", target=trigger, data={"name": trigger.name}
        )
        trigger.delete()


def _check_output_binding(*, org: Organization, binding_id: uuid.UUID | None) -> None:
    """An output binding must be one of the org's own (another org's is as unknown as a made-up id)."""
    if binding_id is not None and not StorageBinding.objects.filter(pk=binding_id, org=org).exists():
        message = "No storage binding of this organization has this id."
        raise ValidationFailed(f"outputBindingId: {message}", details={"fields": {"outputBindingId": [message]}})


def _environment(*, org: Organization, name: str | None) -> Environment | None:
    """The org's environment of that name (another org's is as unknown as a made-up name)."""
    if not name:
        return None
    environment = Environment.objects.filter(org=org, name=name).first()
    if environment is None:
        message = f"No environment of this organization is named {name!r}."
        raise ValidationFailed(f"environment: {message}", details={"fields": {"environment": [message]}})
    return environment


_CHAT_FIELDS = ("chat_provider", "chat_team_id", "chat_channel_id", "chat_keyword")


def _chat_fields(trigger: Trigger) -> dict[str, str]:
    return {name: getattr(trigger, name) for name in _CHAT_FIELDS}


def _keyword_taken(*, org: Organization, fields: dict[str, Any], exclude: uuid.UUID | None = None) -> Conflict:
    """The keyword clash, naming the trigger that holds the keyword when it is one of this org's
    (another org's trigger is never named: its name is not this org's to read)."""
    holder = (
        Trigger.objects.filter(**{name: fields.get(name, "") for name in _CHAT_FIELDS})
        .exclude(pk=exclude)
        .only("id", "name", "org_id")
        .first()
    )
    keyword = fields.get("chat_keyword", "")
    if holder is not None and holder.org_id == org.pk:
        message = f'Trigger "{holder.name}" already uses the keyword "{keyword}" in this chat channel.'
        details: dict[str, Any] = {"trigger_id": str(holder.pk), "trigger_name": holder.name}
    else:
        message = f'Another trigger already uses the keyword "{keyword}" in this chat channel.'
        details = {}
    return Conflict(
        message,
        code="chat_keyword_taken",
        details={**details, "fields": {"chat_keyword": ["already used in this channel"]}},
    )
