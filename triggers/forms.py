"""Forms of the trigger pages.

They only collect and shape input: every rule (names, labels, chat and notify fields,
params) is the API's own, applied by `TriggerInput` / `RunInput` in the view, so a page
accepts exactly what the API accepts.
"""

from __future__ import annotations

import re
import uuid

from django import forms

from .api import TRIGGER_FIELDS
from .models import ChatProvider, NotifyOn, Trigger, TriggerType

_BLANK = [("", "—")]


def _text(label: str, *, help_text: str = "", placeholder: str = "", required_attr: bool = False) -> forms.CharField:
    attrs = {"placeholder": placeholder} if placeholder else {}
    if required_attr:
        attrs["required"] = True
    # required=False: an empty value reaches the API serializer, which says what is missing.
    return forms.CharField(
        label=label, required=False, strip=True, help_text=help_text, widget=forms.TextInput(attrs=attrs)
    )


def split_labels(value: str) -> list[str]:
    return [label for label in re.split(r"[\s,]+", value or "") if label]


class TriggerForm(forms.Form):
    name = _text("Name", placeholder="deploy-prod", required_attr=True)
    type = forms.ChoiceField(label="Type", choices=TriggerType.choices, initial=TriggerType.WEBHOOK)
    workflow = _text(
        "Workflow",
        placeholder="deploy",
        required_attr=True,
        help_text="The file on the agent's host: workflows/<name>.yaml.",
    )
    agent_labels = _text(
        "Agent labels",
        placeholder="prod, linux",
        help_text="Comma- or space-separated. Only an agent with every one of these labels runs the job.",
    )
    default_ref = _text("Default ref", placeholder="main", help_text="Used when a run names no ref.")
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    chat_provider = forms.ChoiceField(label="Chat provider", choices=_BLANK + ChatProvider.choices, required=False)
    chat_team_id = _text("Team / guild id", placeholder="T0123")
    chat_channel_id = _text("Channel id", placeholder="C0123")
    chat_keyword = _text(
        "Keyword", placeholder="deploy", help_text="@deplite <keyword> or /deplite <keyword> in that channel."
    )

    notify_provider = forms.ChoiceField(label="Notify via", choices=_BLANK + ChatProvider.choices, required=False)
    notify_team_id = _text("Team / guild id", placeholder="T0123")
    notify_channel_id = _text("Channel id", placeholder="C0456")
    notify_on = forms.ChoiceField(label="Notify on", choices=NotifyOn.choices, initial=NotifyOn.ALWAYS)

    GENERAL = ("name", "type", "workflow", "agent_labels", "default_ref", "enabled")
    CHAT = ("chat_provider", "chat_team_id", "chat_channel_id", "chat_keyword")
    NOTIFY = ("notify_provider", "notify_team_id", "notify_channel_id", "notify_on")

    @classmethod
    def initial_for(cls, trigger: Trigger) -> dict:
        initial = {field: getattr(trigger, field) for field in TRIGGER_FIELDS}
        initial["agent_labels"] = ", ".join(trigger.agent_labels or [])
        return initial

    def wire_data(self) -> dict:
        """The cleaned form as TriggerInput's data (the form's fields are its fields)."""
        data = {field: self.cleaned_data.get(field) for field in TRIGGER_FIELDS}
        data["agent_labels"] = split_labels(data.get("agent_labels") or "")
        return data

    def fieldsets(self):
        return [
            ("General", [self[f] for f in self.GENERAL]),
            ("Chat trigger (Slack / Discord)", [self[f] for f in self.CHAT]),
            ("Result notification", [self[f] for f in self.NOTIFY]),
        ]


class RunForm(forms.Form):
    ref = forms.CharField(label="Ref", required=False, strip=True)
    params = forms.CharField(
        label="Params",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "ENV=production\nVERSION=1.2.3", "class": "mono"}),
        help_text="One KEY=value per line; the workflow sees PARAMS_<KEY>. A file id as value is an input file.",
    )
    # One key per rendered form: a double click or a resent POST runs the trigger once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, trigger: Trigger | None = None, **kwargs):
        kwargs.setdefault("initial", {"idempotency_key": f"ui-{uuid.uuid4()}"})
        super().__init__(*args, **kwargs)
        if trigger is not None:
            self.fields["ref"].widget.attrs["placeholder"] = trigger.default_ref or "main"

    def clean_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        for number, line in enumerate((self.cleaned_data.get("params") or "").splitlines(), start=1):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            key = key.strip()
            if not sep or not key:
                raise forms.ValidationError(f"Line {number}: write KEY=value.")
            if key in params:
                raise forms.ValidationError(f"Line {number}: {key} is given twice.")
            params[key] = value
        return params

    def wire_data(self) -> dict:
        return {"ref": self.cleaned_data.get("ref") or None, "params": self.cleaned_data.get("params") or {}}
