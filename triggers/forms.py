"""Forms of the trigger pages.

They only collect and shape input: every rule (names, labels, chat and notify fields,
params) is the API's own, applied by `TriggerInput` / `RunInput` in the view, so a page
accepts exactly what the API accepts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from django import forms

from . import rules
from .api import TRIGGER_FIELDS
from .models import ChatProvider, ChatRunPolicy, NotifyOn, NotifyProvider, Trigger, TriggerType

_BLANK = [("", "—")]


def _text(
    label: str, *, help_text: str = "", placeholder: str = "", required_attr: bool = False, datalist: str = ""
) -> forms.CharField:
    attrs = {"placeholder": placeholder} if placeholder else {}
    if datalist:  # suggestions (the org's linked workspaces), free text still allowed
        attrs["list"] = datalist
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
    repository_url = _text(
        "Repository URL",
        placeholder="https://github.com/acme/web",
        help_text="Optional. A commit SHA as ref then links to the commit.",
    )

    chat_provider = forms.ChoiceField(label="Chat provider", choices=_BLANK + ChatProvider.choices, required=False)
    chat_team_id = _text("Team / guild id", placeholder="T0123", datalist="linked-team-ids")
    chat_channel_id = _text("Channel id", placeholder="C0123")
    chat_keyword = _text(
        "Keyword", placeholder="deploy", help_text="@deplite <keyword> or /deplite <keyword> in that channel."
    )
    chat_run_policy = forms.ChoiceField(
        label="Who may run it from chat",
        choices=ChatRunPolicy.choices,
        initial=ChatRunPolicy.MEMBERS,
        required=False,
        help_text="Linked members (/deplite login), or anyone in the channel for harmless jobs. "
        "People from outside the workspace never may.",
    )

    notify_provider = forms.ChoiceField(label="Notify via", choices=_BLANK + NotifyProvider.choices, required=False)
    notify_team_id = _text("Team / guild id", placeholder="T0123", datalist="linked-team-ids")
    notify_channel_id = _text("Channel id", placeholder="C0456")
    notify_url = _text(
        "Webhook URL",
        placeholder="https://hooks.example.com/deplite",
        help_text="Notify via Webhook: the signed JSON result is POSTed here. The signing secret is shown once, after saving.",
    )
    notify_on = forms.ChoiceField(label="Notify on", choices=NotifyOn.choices, initial=NotifyOn.ALWAYS)

    output_binding_id = forms.ChoiceField(
        label="Output binding",
        choices=[("", "— the input file's binding, or the only one")],
        required=False,
        help_text="Where the files its jobs upload (deplite-agent files upload, workflow outputs) go.",
    )

    environment = forms.ChoiceField(
        label="Environment",
        choices=[("", "— none: its jobs run as soon as an agent is free")],
        required=False,
        help_text="Where its jobs deploy: that environment's rules (order, approvals, refs, lock) gate them.",
    )

    GENERAL = (
        "name",
        "type",
        "workflow",
        "agent_labels",
        "default_ref",
        "repository_url",
        "environment",
        "output_binding_id",
        "enabled",
    )
    CHAT = ("chat_provider", "chat_team_id", "chat_channel_id", "chat_keyword", "chat_run_policy")
    NOTIFY = ("notify_provider", "notify_team_id", "notify_channel_id", "notify_url", "notify_on")

    def __init__(
        self, *args, bindings: Iterable[tuple[uuid.UUID, str]] = (), environments: Iterable[str] = (), **kwargs
    ):
        super().__init__(*args, **kwargs)
        field = self.fields["output_binding_id"]
        field.choices = [*field.choices, *((str(pk), name) for pk, name in bindings)]
        field = self.fields["environment"]
        field.choices = [*field.choices, *((name, name) for name in environments)]

    @classmethod
    def initial_for(cls, trigger: Trigger) -> dict:
        initial = {field: getattr(trigger, field) for field in TRIGGER_FIELDS}
        initial["agent_labels"] = ", ".join(trigger.agent_labels or [])
        initial["output_binding_id"] = str(trigger.output_binding_id or "")
        # The environment by its name, as the API names it.
        initial["environment"] = trigger.environment.name if trigger.environment_id else ""
        return initial

    def wire_data(self) -> dict:
        """The cleaned form as TriggerInput's data (the form's fields are its fields)."""
        data = {field: self.cleaned_data.get(field) for field in TRIGGER_FIELDS}
        data["agent_labels"] = split_labels(data.get("agent_labels") or "")
        # The field shows "main" as its placeholder: left empty, it means what it shows (the rule's default).
        data["default_ref"] = data.get("default_ref") or rules.DEFAULT_REF
        data["output_binding_id"] = data.get("output_binding_id") or None
        # Not sent (a form without chat fields): the safe default, as the API's.
        data["chat_run_policy"] = data.get("chat_run_policy") or ChatRunPolicy.MEMBERS
        # The environment by name, as the API takes it: none is null.
        data["environment"] = self.cleaned_data.get("environment") or None
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
    input_file = forms.ChoiceField(
        label="Input file",
        required=False,
        help_text="An available file from Storage; the agent downloads it before the first step.",
    )
    input_param = forms.CharField(
        label="Input file param",
        required=False,
        initial="FILE",
        help_text="The param that names it: the workflow sees PARAMS_<NAME>_PATH.",
    )
    # One key per rendered form: a double click or a resent POST runs the trigger once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, trigger: Trigger | None = None, files=(), **kwargs):
        kwargs.setdefault("initial", {"idempotency_key": f"ui-{uuid.uuid4()}", "input_param": "FILE"})
        super().__init__(*args, **kwargs)
        if trigger is not None:
            self.fields["ref"].widget.attrs["placeholder"] = trigger.default_ref or "main"
        self.fields["input_file"].choices = [("", "— none —")] + [(str(f.pk), f"{f.file_name} ({f.pk})") for f in files]
        if not files:
            del self.fields["input_file"], self.fields["input_param"]

    def clean_params(self) -> dict[str, str]:
        return parse_params_text(self.cleaned_data.get("params") or "")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("input_file"):
            name = (cleaned.get("input_param") or "").strip()
            if not name:
                self.add_error("input_param", "Name the param that carries the input file.")
            elif name in (cleaned.get("params") or {}):
                self.add_error("input_param", f"{name} is also given in Params.")
        return cleaned

    def wire_data(self) -> dict:
        params = dict(self.cleaned_data.get("params") or {})
        if self.cleaned_data.get("input_file"):
            params[self.cleaned_data["input_param"].strip()] = self.cleaned_data["input_file"]
        return {"ref": self.cleaned_data.get("ref") or None, "params": params}


def parse_params_text(text: str) -> dict[str, str]:
    """`KEY=value` lines (the Run and Re-run forms) as a dict; blank lines are skipped."""
    params: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
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


def params_text(params: dict[str, str]) -> str:
    return "\n".join(f"{key}={value}" for key, value in params.items())


class RerunForm(forms.Form):
    """The job page's Re-run: the job's ref and params, editable first (the API's RerunInput checks them)."""

    ref = forms.CharField(
        label="Ref",
        required=False,
        strip=True,
        help_text="Run at another ref (a branch, tag or commit), or keep the job's.",
    )
    params = forms.CharField(
        label="Params",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text="One KEY=value per line. Change them or run with the same ones.",
    )

    def __init__(self, *args, file_params: Iterable[str] = (), outputs: Iterable[tuple[str, str]] = (), **kwargs):
        """`file_params`: the job's params that named an input file; `outputs`: (id, name) of the files the
        job uploaded. Each such param gets a choice "use an output of this job as PARAM"."""
        super().__init__(*args, **kwargs)
        outputs = list(outputs)
        self.output_fields: dict[str, str] = {}
        if not outputs:
            return
        for param in file_params:
            name = f"output_for_{param}"
            self.fields[name] = forms.ChoiceField(
                label=f"Use an output of this job as {param}",
                required=False,
                choices=[("", f"— keep {param} as in Params —"), *((pk, f"{label} ({pk})") for pk, label in outputs)],
            )
            self.output_fields[name] = param

    @classmethod
    def for_job(cls, job, **kwargs) -> RerunForm:
        return cls(initial={"ref": job.ref, "params": params_text(job.params or {})}, **kwargs)

    def clean_params(self) -> dict[str, str]:
        return parse_params_text(self.cleaned_data.get("params") or "")

    def rerun_params(self) -> dict[str, str]:
        """The params to run with: the edited ones, with each chosen output in its param."""
        params = dict(self.cleaned_data.get("params") or {})
        for name, param in self.output_fields.items():
            if self.cleaned_data.get(name):
                params[param] = self.cleaned_data[name]
        return params
