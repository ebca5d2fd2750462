"""Which chat providers this server is configured for, and what to set when one is not.

An unconfigured provider is disabled with a message naming the missing variables;
everything else (webhooks, the other provider) keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from triggers.models import ChatProvider

# Variables each provider needs, in the order the README lists them.
REQUIRED_SETTINGS = {
    ChatProvider.SLACK: ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_SIGNING_SECRET"),
    ChatProvider.DISCORD: ("DISCORD_CLIENT_ID", "DISCORD_CLIENT_SECRET", "DISCORD_PUBLIC_KEY", "DISCORD_BOT_TOKEN"),
}


@dataclass(frozen=True)
class ProviderStatus:
    provider: str
    label: str
    missing: tuple[str, ...]

    @property
    def configured(self) -> bool:
        return not self.missing

    @property
    def message(self) -> str:
        if self.configured:
            return ""
        return f"{self.label} is not configured on this server: set {', '.join(self.missing)}."


def provider_status(provider: str) -> ProviderStatus:
    missing = tuple(name for name in REQUIRED_SETTINGS[provider] if not getattr(settings, name, ""))
    return ProviderStatus(provider=provider, label=ChatProvider(provider).label, missing=missing)


def all_provider_statuses() -> list[ProviderStatus]:
    return [provider_status(p) for p in (ChatProvider.SLACK, ChatProvider.DISCORD)]
