from django import forms

from .models import Role, StoragePermission, TokenScope


class MemberAddForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class ApiTokenForm(forms.Form):
    """Collects a new token's fields; the rules are the API's `ApiTokenCreateInput`."""

    name = forms.CharField(max_length=100, required=False, help_text="Optional: a name is generated when left empty.")
    scope_type = forms.ChoiceField(label="Scope", choices=TokenScope.choices, initial=TokenScope.ORG)
    binding_ids = forms.CharField(
        label="Binding ids", required=False, help_text="Storage tokens: comma-separated binding ids."
    )
    storage_permissions = forms.MultipleChoiceField(
        choices=StoragePermission.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    trigger_ids = forms.CharField(
        label="Trigger ids", required=False, help_text="Trigger tokens: comma-separated trigger ids."
    )
    expires_at = forms.DateTimeField(label="Expires at (UTC)", required=False)

    def wire_data(self) -> dict:
        d = self.cleaned_data

        def ids(name: str) -> list[str]:
            return [v.strip() for v in (d.get(name) or "").split(",") if v.strip()]

        return {
            "name": d.get("name"),
            "scope_type": d.get("scope_type"),
            "binding_ids": ids("binding_ids"),
            "storage_permissions": d.get("storage_permissions") or [],
            "trigger_ids": ids("trigger_ids"),
            "expires_at": d.get("expires_at"),
        }
