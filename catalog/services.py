"""Use cases of the catalog: adding codes to stock. Plain functions, keyword-only, one transaction each."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from catalog import codes
from catalog.models import CardCode, CodeAccess, ImportBatch, Sku
from catalog.signals import send_stock_changed


def build_card_code(*, sku: Sku, secret: codes.Secret, batch: ImportBatch | None = None) -> CardCode:
    """An unsaved CardCode holding ``secret`` encrypted, fingerprinted and masked."""
    return CardCode(
        sku=sku,
        batch=batch,
        payload=codes.encrypt(secret),
        fingerprint=codes.fingerprint(secret.code),
        hint=codes.mask(secret.code),
        reusable=sku.reusable_code,
    )


@transaction.atomic
def add_codes(*, sku: Sku, secrets: Iterable[codes.Secret], batch: ImportBatch | None = None) -> list[CardCode]:
    """Add codes to a SKU's stock. A code already in the SKU's stock raises IntegrityError
    (the unique fingerprint constraint); bulk imports check for duplicates first (catalog/imports/)."""
    rows = [build_card_code(sku=sku, secret=secret, batch=batch) for secret in secrets]
    created = CardCode.objects.bulk_create(rows, batch_size=1000)
    send_stock_changed(sku_ids=[sku.pk])
    return created


def reveal(*, code: CardCode) -> codes.Secret:
    """Decrypt one code. Callers record who saw it (CodeAccess) or are the order's owner."""
    return codes.decrypt(code.payload)


def reveal_to_staff(*, code: CardCode, user, ip_address: str | None) -> codes.Secret:
    """A merchant's or operator's look at one full code: recorded (who, when, from where) first."""
    CodeAccess.objects.create(
        user=user, kind=CodeAccess.Kind.REVEAL, merchant_id=code.sku.product.merchant_id, code=code,
        ip_address=ip_address,
    )  # fmt: skip
    return reveal(code=code)
