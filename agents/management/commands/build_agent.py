"""`manage.py build_agent`: build the agent's wheel from deplite_agent/ and publish it, with its sha256 and
install.sh, where the web processes serve /agent/… from (DEPLITE_AGENT_DIST_DIR).

Run at set-up, never while serving: `make install` (when deplite_agent/ changed) and the Procfile's
release line.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agents.distribution import AgentBuildError, build_agent_release


class Command(BaseCommand):
    help = "Build the agent's wheel and install script into DEPLITE_AGENT_DIST_DIR, where /agent/ serves them from."

    def add_arguments(self, parser):
        parser.add_argument("--dest", help="Another directory than DEPLITE_AGENT_DIST_DIR.")

    def handle(self, *args, **options):
        dest = Path(options["dest"]) if options["dest"] else Path(settings.DEPLITE_AGENT_DIST_DIR)
        try:
            release = build_agent_release(dest=dest)
        except AgentBuildError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"deplite-agent {release.version}: {dest / release.wheel} (sha256 {release.sha256})")
