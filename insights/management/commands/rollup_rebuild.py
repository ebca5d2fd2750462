"""Rebuild the DORA rollup from the jobs: after a backfill, or bulk writes that passed by the receivers
(the periodic reconcile only looks at the last 48 hours, and at counts)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from insights.rollup import rollup_enabled, rollup_rebuild
from orgs.models import Organization


class Command(BaseCommand):
    help = "Recompute the DORA rollup (insights) of every environment, or of one organization's, from its jobs."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Only this organization's environments.")

    def handle(self, *args, org: str | None = None, **options):
        org_id = None
        if org is not None:
            org_id = Organization.objects.filter(slug=org).values_list("pk", flat=True).first()
            if org_id is None:
                raise CommandError(f"No organization with the slug {org!r}.")
        if not rollup_enabled():
            self.stdout.write(
                "Nothing to rebuild: the rollup is kept on PostgreSQL only (here insights read the jobs)."
            )
            return
        count = rollup_rebuild(org_id=org_id)
        self.stdout.write(self.style.SUCCESS(f"Rebuilt the DORA rollup of {count} environment(s)."))
