"""Re-encrypt every stored secret with the newest key in DEPLITE_ENCRYPTION_KEYS."""

from django.core.management.base import BaseCommand
from django.db import transaction

from deplite import crypto


class Command(BaseCommand):
    help = "Re-encrypt every EncryptedTextField with the newest DEPLITE_ENCRYPTION_KEYS key."

    def handle(self, *args, **options):
        total = 0
        for model, names in crypto.encrypted_fields():
            manager = model._default_manager
            count = 0
            with transaction.atomic():
                # Reading decrypts with any configured key; writing encrypts with the newest.
                for pk, *plain in manager.select_for_update().values_list("pk", *names).iterator():
                    manager.filter(pk=pk).update(**dict(zip(names, plain, strict=True)))
                    count += 1
            total += count
            self.stdout.write(f"{model._meta.label}: re-encrypted {count} row(s) ({', '.join(names)})")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} row(s)."))
