"""Link a Discord server (guild) to an org without OAuth (self-hosted). The bot must
already be in the guild (DISCORD_BOT_TOKEN is the app's); stored like an OAuth install."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations import services
from orgs.actors import Actor
from orgs.models import Organization
from triggers.models import ChatProvider
from triggers.rules import CHAT_ID_RE


class Command(BaseCommand):
    help = "Link a Discord server (guild id) to an organization."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="the organization's slug")
        parser.add_argument("--guild-id", required=True, help="the server's id")
        parser.add_argument("--name", default="", help="a name to show for it")

    def handle(self, *args, org: str, guild_id: str, name: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with slug {org!r}.")
        if not CHAT_ID_RE.match(guild_id):
            raise CommandError("--guild-id is a Discord id (digits).")
        try:
            installation, created = services.installation_link(
                org=organization,
                actor=Actor.system("manage.py discord_connect"),
                provider=ChatProvider.DISCORD,
                external_id=guild_id,
                name=name,
                bot_user_id=settings.DISCORD_CLIENT_ID,
            )
        except services.LinkedElsewhere as exc:
            raise CommandError(exc.message) from None
        verb = "Linked" if created else "Updated"
        self.stdout.write(f"{verb} Discord server {installation.name or guild_id} ({guild_id}) to {organization.slug}.")
