"""Chat: the Slack and Discord apps, and the outbox that carries every message Deplite sends them."""

from __future__ import annotations

from .base import env

# --- the Slack and Discord apps (integrations) ------------------------------------------------
SLACK_CLIENT_ID = env.str("SLACK_CLIENT_ID", default="")
SLACK_CLIENT_SECRET = env.str("SLACK_CLIENT_SECRET", default="")
SLACK_SIGNING_SECRET = env.str("SLACK_SIGNING_SECRET", default="")
SLACK_API_URL = env.str("SLACK_API_URL", default="https://slack.com/api/")
DISCORD_CLIENT_ID = env.str("DISCORD_CLIENT_ID", default="")
DISCORD_CLIENT_SECRET = env.str("DISCORD_CLIENT_SECRET", default="")
DISCORD_PUBLIC_KEY = env.str("DISCORD_PUBLIC_KEY", default="")
DISCORD_BOT_TOKEN = env.str("DISCORD_BOT_TOKEN", default="")
DISCORD_API_URL = env.str("DISCORD_API_URL", default="https://discord.com/api/v10")

# --- the outbox (integrations.outbox, fed by notifications) -----------------------------------
# A worker owns a delivery this long (far above the HTTP timeout); past it, the row is
# taken over and the provider asked whether the message exists before sending again.
DEPLITE_NOTIFY_LEASE_SECONDS = env.int("DEPLITE_NOTIFY_LEASE_SECONDS", default=60)
# Attempts per delivery before it is recorded as failed (transient errors only).
DEPLITE_NOTIFY_MAX_ATTEMPTS = env.int("DEPLITE_NOTIFY_MAX_ATTEMPTS", default=8)
# The sweeper re-enqueues a message still owed this long after its scheduled attempt (every
# attempt, backoff and pace included, stamps that time on the row): short, so a killed
# worker's paced backlog moves again within seconds.
DEPLITE_NOTIFY_SWEEP_GRACE_SECONDS = env.int("DEPLITE_NOTIFY_SWEEP_GRACE_SECONDS", default=3)
# Seconds between two messages to one channel (Slack allows about one a second).
DEPLITE_NOTIFY_CHANNEL_INTERVAL = env.float("DEPLITE_NOTIFY_CHANNEL_INTERVAL", default=1.0)

# --- webhook notifications (notifyProvider "webhook": integrations.webhook) -------------------
# Allow `http://` and private/loopback webhook URLs (a receiver on a LAN, tests). Off: public https only.
DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS = env.bool("DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS", default=False)
