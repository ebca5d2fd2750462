"""Forms of the environment pages: the rules (new environment, edit), the lock, and a job's
approve/reject comment. They shape input for `triggers.environments.services`, which decides."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django import forms

from orgs.models import Role

from ..rules import RuleViolation
from . import rules
from .models import MAX_REQUIRED_APPROVALS, Concurrency, Environment, QueueOrder


def split_patterns(value: str) -> list[str]:
    """`main, release/*` or one per line: the allowed-refs globs."""
    return [p for p in re.split(r"[\s,]+", value or "") if p]


def _rule(clean):
    """A rule of `environments.rules` (the API's own) as a form field validator."""

    def validate(value):
        try:
            clean(value)
        except RuleViolation as exc:
            raise forms.ValidationError(exc.message) from None

    return validate


class EnvironmentForm(forms.Form):
    """An environment's rules; `name` only when creating it (names never change)."""

    name = forms.CharField(
        label="Name",
        max_length=50,
        validators=[_rule(rules.clean_name)],
        widget=forms.TextInput(attrs={"placeholder": "production"}),
        help_text="Lowercase letters, digits, - and _. Fixed once created: triggers and the API refer to it by name.",
    )
    description = forms.CharField(label="Description", max_length=300, required=False)
    concurrency = forms.ChoiceField(
        label="Concurrency",
        choices=Concurrency.choices,
        initial=Concurrency.ONE,
        help_text="One at a time: the other jobs wait their turn.",
    )
    queue = forms.ChoiceField(
        label="Queue",
        choices=QueueOrder.choices,
        initial=QueueOrder.FIFO,
        help_text="Newest only: a newer waiting job cancels the older waiting ones.",
    )
    required_approvals = forms.IntegerField(
        label="Required approvals",
        initial=0,
        min_value=0,
        max_value=MAX_REQUIRED_APPROVALS,
        help_text=f"0 to {MAX_REQUIRED_APPROVALS}. A job waits for this many approvals before it may run.",
    )
    approver_role = forms.ChoiceField(
        label="Approvers: members with at least the role",
        choices=Role.choices,
        initial=Role.ADMIN,
    )
    approvers = forms.MultipleChoiceField(
        label="Or these members only",
        required=False,
        help_text="Named approvers replace the role.",
    )
    prevent_self_approval = forms.BooleanField(
        label="Whoever started a job may not approve it", required=False, initial=True
    )
    approval_timeout_seconds = forms.IntegerField(
        label="Approval timeout (seconds)",
        initial=24 * 3600,
        min_value=rules.MIN_APPROVAL_TIMEOUT_SECONDS,
        max_value=rules.MAX_APPROVAL_TIMEOUT_SECONDS,
        help_text="A job not approved by then ends cancelled.",
    )
    allowed_refs = forms.CharField(
        label="Allowed refs",
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "main, release/*"}),
        help_text="Glob patterns, comma-separated. Empty: any ref.",
    )

    def __init__(self, *args, members: list[tuple[int, str]] = (), creating: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["approvers"].choices = [(str(pk), email) for pk, email in members]
        if not creating:
            del self.fields["name"]

    @classmethod
    def initial_for(cls, environment: Environment) -> dict:
        return {
            "description": environment.description,
            "concurrency": environment.concurrency,
            "queue": environment.queue,
            "required_approvals": environment.required_approvals,
            "approver_role": environment.approver_role,
            "approvers": [str(pk) for pk in environment.approvers.values_list("pk", flat=True)],
            "prevent_self_approval": environment.prevent_self_approval,
            "approval_timeout_seconds": environment.approval_timeout_seconds,
            "allowed_refs": ", ".join(environment.allowed_refs or []),
        }

    def clean_allowed_refs(self) -> list[str]:
        try:
            return rules.clean_allowed_refs(split_patterns(self.cleaned_data.get("allowed_refs") or ""))
        except RuleViolation as exc:
            raise forms.ValidationError(exc.message) from None

    def service_kwargs(self) -> dict:
        """The rules as the services' keyword arguments (`approver_ids`: the named approvers)."""
        data = dict(self.cleaned_data)
        data["approver_ids"] = [int(pk) for pk in data.pop("approvers", [])]
        return data


class LockForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "release freeze"}),
    )
    expires_at = forms.DateTimeField(
        label="Unlocks by itself at (UTC, optional)",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_expires_at(self) -> datetime | None:
        value = self.cleaned_data.get("expires_at")
        # The field says UTC, whatever the server's zone.
        return value.replace(tzinfo=UTC) if value is not None else None


class DecisionForm(forms.Form):
    comment = forms.CharField(label="Comment (optional)", max_length=1000, required=False)
