"""Notifications own no table: the messages a job owes are rows of the outbox
(`integrations.models.OutboxMessage`), written by `notifications.services`."""
