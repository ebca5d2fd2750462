"""Register the `/deplite` command with Discord (globally, or for one guild, which shows
up at once while global commands can take a while)."""

from django.core.management.base import BaseCommand, CommandError

from integrations.discord import transport
from integrations.providers import provider_status
from integrations.transport import TransportError
from triggers.models import ChatProvider


class Command(BaseCommand):
    help = "Register the /deplite slash command with Discord."

    def add_arguments(self, parser):
        parser.add_argument("--guild-id", default=None, help="register for this guild only")

    def handle(self, *args, guild_id: str | None, **options):
        status = provider_status(ChatProvider.DISCORD)
        if not status.configured:
            raise CommandError(status.message)
        try:
            commands = transport.register_commands(guild_id=guild_id)
        except TransportError as exc:
            raise CommandError(f"Discord refused the command registration: {exc.message}") from None
        names = ", ".join(f"/{c.get('name')}" for c in commands) or "/deplite"
        where = f"guild {guild_id}" if guild_id else "all servers (global)"
        self.stdout.write(f"Registered {names} for {where}.")
