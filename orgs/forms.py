from django import forms

from .models import Role, StoragePermission, TokenScope


class MemberAddForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100)
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

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.org = org

    def _ids(self, name):
        import uuid

        raw = [v.strip() for v in (self.cleaned_data.get(name) or "").split(",") if v.strip()]
        try:
            return [uuid.UUID(v) for v in raw]
        except ValueError:
            self.add_error(name, "Enter ids separated by commas.")
            return []

    def clean(self):
        data = super().clean()
        scope = data.get("scope_type")
        data["binding_ids"] = self._ids("binding_ids")
        data["trigger_ids"] = self._ids("trigger_ids")
        if scope == TokenScope.STORAGE and not (data["binding_ids"] and data.get("storage_permissions")):
            raise forms.ValidationError("A storage token needs binding ids and at least one permission.")
        if scope == TokenScope.TRIGGER and not data["trigger_ids"]:
            raise forms.ValidationError("A trigger token needs trigger ids.")
        return data

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {
            "name": d["name"],
            "scope_type": d["scope_type"],
            "binding_ids": d["binding_ids"],
            "storage_permissions": d.get("storage_permissions") or [],
            "trigger_ids": d["trigger_ids"],
            "expires_at": d.get("expires_at"),
        }
