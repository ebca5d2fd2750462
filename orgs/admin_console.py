"""The Django admin as an operator's console: actions that call services, and list filters.

An operator never changes product state by editing fields here: each action calls the same
service the API calls, with the operator as the audit actor (`operator_actor`). A model admin
plugs an action in with one line:

    actions = [service_action("revoke", "Revoke selected agents",
                              lambda agent, actor: agent_revoke(agent=agent, actor=actor))]

and mixes in `OperatorConsole`, which lets staff with the model's Django *change* permission run
the actions even though the admin itself is read-only (no field can be edited).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from deplite.errors import DepliteError
from orgs import ratelimit
from orgs.actors import Actor, ActorKind


def operator_actor(request: HttpRequest) -> Actor:
    """The staff user behind an admin action, as the audit log names them."""
    user = request.user
    return Actor(
        kind=ActorKind.USER,
        id=str(user.pk),
        label=f"admin:{user.email}",
        user=user,
        # The client address as the API records it.
        ip=ratelimit.client_ip(request),
    )


def service_action(
    name: str,
    description: str,
    call: Callable[[Any, Actor], Any],
    *,
    select_related: tuple[str, ...] = ("org",),
):
    """An admin action running `call(obj, actor)` (a service call) on each selected row.

    A row the service refuses (a DepliteError: already finished, wrong state) is reported back and
    the others still go through; each service call is its own transaction with its audit entry.
    """

    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        actor = operator_actor(request)
        done, refused = 0, []
        for obj in queryset.select_related(*select_related):
            try:
                call(obj, actor)
            except DepliteError as exc:
                refused.append(f"{obj}: {exc.message}")
            else:
                done += 1
        if done:
            modeladmin.message_user(request, f"{description}: done for {done}.", messages.SUCCESS)
        for line in refused:
            modeladmin.message_user(request, f"Not done — {line}", messages.WARNING)

    action.__name__ = name
    return admin.action(description=description, permissions=["operate"])(action)


class OperatorConsole:
    """Mix into a ModelAdmin: read-only rows, actions for staff holding the model's change permission."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_operate_permission(self, request) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")


def age_filter(field: str = "created_at", title: str = "age") -> type[admin.SimpleListFilter]:
    """A list filter on how old `field` is: newer than an hour / a day / a week, or older than a week / a month."""

    class AgeFilter(admin.SimpleListFilter):
        parameter_name = "age"
        ranges = {
            "1h": ("last hour", timedelta(hours=1), True),
            "24h": ("last 24 hours", timedelta(days=1), True),
            "7d": ("last 7 days", timedelta(days=7), True),
            "gt7d": ("older than 7 days", timedelta(days=7), False),
            "gt30d": ("older than 30 days", timedelta(days=30), False),
        }

        def lookups(self, request, model_admin):
            return [(key, label) for key, (label, _, _) in self.ranges.items()]

        def queryset(self, request, queryset):
            choice = self.ranges.get(self.value() or "")
            if choice is None:
                return queryset
            _, delta, newer = choice
            cutoff = timezone.now() - delta
            return queryset.filter(**{f"{field}__gte" if newer else f"{field}__lt": cutoff})

    AgeFilter.title = title
    return AgeFilter


def org_filter() -> tuple[str, type]:
    """Filter by organization, listing only the orgs that have rows here."""
    return ("org", admin.RelatedOnlyFieldListFilter)


def masked(value: Any) -> str:
    """How a secret shows in the admin: whether it is set, never what it is."""
    return "•••••••• (set)" if value else "—"
