"""Webhook notifications: a job's result POSTed, signed, to any HTTP endpoint (notifyProvider "webhook")."""
