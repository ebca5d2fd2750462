"""Forms of the storage pages. They collect input; the rules are the API's
(`StorageBindingInput`, and the services' endpoint and secret checks)."""

from __future__ import annotations

from django import forms

from .models import StorageBinding


def _text(label: str, placeholder: str = "", help_text: str = "", required_attr: bool = False) -> forms.CharField:
    attrs = {"placeholder": placeholder, "autocomplete": "off"}
    if required_attr:
        attrs["required"] = True
    # required=False: emptiness is judged by the API serializer, with the API's message.
    return forms.CharField(label=label, required=False, help_text=help_text, widget=forms.TextInput(attrs=attrs))


class StorageBindingForm(forms.Form):
    name = _text("Name", "prod-artifacts", required_attr=True)
    endpoint = _text("Endpoint", "https://s3.amazonaws.com", required_attr=True)
    region = _text("Region", "ap-northeast-2", "Leave empty for us-east-1; R2 uses auto.")
    bucket = _text("Bucket", "myapp-deplite", required_attr=True)
    access_key = _text("Access Key", "AKIA...", required_attr=True)
    # Write-only: render_value=False, so the secret is never sent back to the browser,
    # not even when the form comes back with errors.
    secret_key = forms.CharField(
        label="Secret Key",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    path_style = forms.BooleanField(
        label="Path-style addressing", required=False, help_text="For MinIO and most self-hosted servers."
    )
    prefix = _text("Key prefix", "builds/", "Optional: files go under this prefix in the bucket.")
    output_retention_days = forms.IntegerField(
        label="Keep job outputs (days)",
        required=False,
        min_value=1,
        max_value=36500,
        help_text="Optional: files jobs upload here are removed this many days later. Empty keeps them.",
    )

    def __init__(self, *args, binding: StorageBinding | None = None, **kwargs):
        if binding is not None and "data" not in kwargs and not args:
            kwargs["initial"] = {f: getattr(binding, f) for f in self.base_fields if f != "secret_key"}
        super().__init__(*args, **kwargs)
        self.binding = binding
        if binding is None:
            self.fields["secret_key"].widget.attrs["required"] = True
        else:
            self.fields["secret_key"].help_text = (
                "Stored encrypted and never shown. Leave empty to keep it; "
                "changing the endpoint, region, bucket or access key needs it again."
            )

    def wire_data(self) -> dict:
        """The cleaned form as StorageBindingInput's data; an empty secret on edit means "keep it"."""
        data = {field: self.cleaned_data.get(field) for field in self.fields}
        if self.binding is not None and not data["secret_key"]:
            del data["secret_key"]
        return data
