"""The agent form: it collects input; the rules are the API's `AgentCreateInput`."""

from __future__ import annotations

from django import forms

from triggers.forms import split_labels


class AgentForm(forms.Form):
    name = forms.CharField(
        label="Name", required=False, widget=forms.TextInput(attrs={"placeholder": "web-1", "required": True})
    )
    labels = forms.CharField(
        label="Labels",
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "prod, linux"}),
        help_text="Comma- or space-separated. The agent takes jobs of triggers whose labels it all has.",
    )

    def wire_data(self) -> dict:
        return {"name": self.cleaned_data.get("name", ""), "labels": split_labels(self.cleaned_data.get("labels", ""))}
