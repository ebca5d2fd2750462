"""`make run`'s first-run helper: a demo owner and org, created only when no user exists.

The demo password is kept in var/demo-login.txt (mode 0600, beside the SQLite file) so
every `make run` can print how to log in, not only the first.
"""

import secrets

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand

from deplite.links import absolute_url, public_base_url
from orgs import services
from orgs.actors import Actor
from orgs.models import User

DEMO_EMAIL = "demo@deplite.local"


class Command(BaseCommand):
    help = "Create a demo owner account and organization if the database has no user yet; print how to log in."

    def handle(self, *args, **options):
        credentials = settings.VAR_DIR / "demo-login.txt"
        if not User.objects.exists():
            password = secrets.token_urlsafe(12)
            user = User.objects.create_superuser(email=DEMO_EMAIL, password=password)
            EmailAddress.objects.create(user=user, email=DEMO_EMAIL, verified=True, primary=True)
            services.org_create(user=user, name="Demo", slug="demo", actor=Actor.system("make run"))
            credentials.write_text(f"{DEMO_EMAIL}\n{password}\n")
            credentials.chmod(0o600)
        banner = "=" * 64
        lines = [
            banner,
            f" Deplite is starting on {public_base_url()}",
            f"   log in:   {absolute_url('account_login')}",
        ]
        if credentials.exists() and User.objects.filter(email=DEMO_EMAIL).exists():
            email, password = credentials.read_text().split()[:2]
            lines += [f"   email:    {email}", f"   password: {password}"]
        else:
            lines += ["   with your own account (create one: python manage.py createsuperuser)"]
        lines += [f"   admin:    {absolute_url('admin:index')}", f"   API docs: {absolute_url('api-docs')}", banner]
        self.stdout.write("\n".join(lines))
