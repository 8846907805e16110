"""Re-encrypt every stored card code with the newest key of CARD_CODE_KEYS.

Key rotation, step by step:

1. Generate a key and put it FIRST in CARD_CODE_KEYS, keeping the old ones after it; deploy.
   New codes are now encrypted with it; old ones still decrypt.
2. Run ``python manage.py rotate_card_keys``: every code (and every code staged by an import that
   is waiting for confirmation) is re-encrypted with the newest key and its fingerprint recomputed
   under it. Safe to interrupt and run again; it works in batches, one transaction each.
3. Remove the old keys from CARD_CODE_KEYS once the command reports nothing left under them.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from catalog import codes
from catalog.models import CardCode, ImportRow


class Command(BaseCommand):
    help = "Re-encrypt all card codes with the newest CARD_CODE_KEYS key and refresh their fingerprints."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args, batch_size: int, **options):
        for model, label in ((CardCode, "card codes"), (ImportRow, "staged import rows")):
            rotated, skipped = self.rotate_model(model, batch_size=batch_size)
            self.stdout.write(f"{label}: {rotated} re-encrypted" + (f", {skipped} skipped" if skipped else ""))

    def rotate_model(self, model, *, batch_size: int) -> tuple[int, int]:
        rotated = skipped = 0
        last_pk = 0
        queryset = model.objects.exclude(payload="").order_by("pk")
        while True:
            with transaction.atomic():
                rows = list(queryset.filter(pk__gt=last_pk).select_for_update()[:batch_size])
                if not rows:
                    return rotated, skipped
                last_pk = rows[-1].pk
                for row in rows:
                    try:
                        secret = codes.decrypt(row.payload)
                    except InvalidToken:
                        raise CommandError(
                            f"{model._meta.verbose_name} #{row.pk} cannot be decrypted with any configured key: "
                            "was a key removed before rotating? Nothing after it was changed."
                        ) from None
                    row.payload = codes.rotate(row.payload)
                    row.fingerprint = codes.fingerprint(secret.code)
                try:
                    with transaction.atomic():
                        model.objects.bulk_update(rows, ["payload", "fingerprint"])
                    rotated += len(rows)
                except IntegrityError:
                    # Two rows of one SKU hold the same code under different keys (added while a
                    # rotation was pending). Rotate row by row and leave the duplicates for review.
                    for row in rows:
                        try:
                            with transaction.atomic():
                                model.objects.filter(pk=row.pk).update(payload=row.payload, fingerprint=row.fingerprint)
                            rotated += 1
                        except IntegrityError:
                            skipped += 1
                            self.stderr.write(
                                f"{model._meta.verbose_name} #{row.pk}: the same code is already stored for its "
                                "SKU; re-encrypted content kept under its old fingerprint — void one of them."
                            )
                            model.objects.filter(pk=row.pk).update(payload=row.payload)
