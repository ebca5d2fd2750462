"""The schedule form of the trigger page: it only collects input; the rules are the API's
ScheduleInput's, applied in the view, so a page accepts exactly what the API accepts."""

from __future__ import annotations

from django import forms

from ..forms import params_text, parse_params_text
from .models import CatchUp, Schedule


class ScheduleForm(forms.Form):
    cron = forms.CharField(
        label="Cron expression",
        required=False,
        strip=True,
        widget=forms.TextInput(attrs={"placeholder": "0 9 * * 1-5", "class": "mono", "required": True}),
        help_text="Five fields: minute hour day-of-month month day-of-week, e.g. 0 9 * * 1-5 (weekdays at 09:00).",
    )
    # Blank on a new schedule: ui.js fills in the browser's own timezone (data-browser-timezone).
    timezone = forms.CharField(
        label="Timezone",
        required=False,
        strip=True,
        widget=forms.TextInput(attrs={"placeholder": "Europe/Berlin", "data-browser-timezone": ""}),
        help_text="An IANA timezone name; the expression is read in it, daylight saving included.",
    )
    ref = forms.CharField(label="Ref", required=False, strip=True)
    params = forms.CharField(
        label="Params",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "ENV=staging", "class": "mono"}),
        help_text="One KEY=value per line; the workflow sees PARAMS_<KEY>.",
    )
    catch_up = forms.ChoiceField(
        label="Missed fires",
        choices=CatchUp.choices,
        initial=CatchUp.LATEST,
        help_text="A fire up to 10 minutes late always runs once; this says what happens to older ones.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    def __init__(self, *args, default_ref: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ref"].widget.attrs["placeholder"] = default_ref or "main"
        self.fields["ref"].help_text = "Blank: the trigger's default ref."

    @classmethod
    def initial_for(cls, schedule: Schedule) -> dict:
        return {
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "ref": schedule.ref,
            "params": params_text(schedule.params),
            "catch_up": schedule.catch_up,
            "enabled": schedule.enabled,
        }

    def clean_params(self) -> dict[str, str]:
        return parse_params_text(self.cleaned_data.get("params") or "")

    def wire_data(self) -> dict:
        data = self.cleaned_data
        return {
            "cron": data.get("cron") or "",
            "timezone": data.get("timezone") or "UTC",
            "ref": data.get("ref") or None,
            "params": data.get("params") or {},
            "catch_up": data.get("catch_up") or CatchUp.LATEST,
            "enabled": bool(data.get("enabled")),
        }
