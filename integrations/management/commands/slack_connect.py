"""Link a Slack workspace to an org without OAuth (self-hosted): the bot token is checked
with `auth.test` against SLACK_API_URL and stored exactly like an OAuth install."""

from django.core.management.base import BaseCommand, CommandError

from integrations import services
from integrations.slack import transport
from integrations.transport import TransportError
from orgs.actors import Actor
from orgs.models import Organization
from triggers.models import ChatProvider


class Command(BaseCommand):
    help = "Link a Slack workspace (team id + bot token) to an organization."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="the organization's slug")
        parser.add_argument("--team-id", required=True, help="the workspace id, T…")
        parser.add_argument("--bot-token", required=True, help="the app's bot token, xoxb-…")

    def handle(self, *args, org: str, team_id: str, bot_token: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with slug {org!r}.")
        if not bot_token.startswith("xoxb-"):
            raise CommandError("--bot-token must be a bot token (xoxb-…).")
        try:
            info = transport.auth_test(token=bot_token)
        except TransportError as exc:
            raise CommandError(f"Slack refused the token (auth.test: {exc.message}).") from None
        if info.get("team_id") != team_id:
            raise CommandError(f"This token belongs to workspace {info.get('team_id')}, not {team_id}.")
        try:
            installation, created = services.installation_link(
                org=organization,
                actor=Actor.system("manage.py slack_connect"),
                provider=ChatProvider.SLACK,
                external_id=team_id,
                name=info.get("team") or "",
                bot_user_id=info.get("user_id") or "",
                bot_token=bot_token,
            )
        except services.LinkedElsewhere as exc:
            raise CommandError(exc.message) from None
        verb = "Linked" if created else "Updated"
        self.stdout.write(f"{verb} Slack workspace {installation.name or team_id} ({team_id}) to {organization.slug}.")
