"""Coupons' back-office work: bulk generation of unique codes and their .xlsx export. Keyword-only, one
transaction each."""

from __future__ import annotations

import secrets
from typing import IO

from django.db import transaction
from django.utils import timezone
from openpyxl import Workbook

from kameng import xlsx
from kameng.money import fen_to_yuan_str
from marketing.models import Coupon

# No 0/O, 1/I/L: codes are read off screens and typed by hand.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
MAX_GENERATED = 5_000


def _random_code(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


@transaction.atomic
def generate_coupon_codes(*, template: Coupon, count: int, prefix: str = "", length: int = 10) -> list[Coupon]:
    """``count`` new coupons like ``template`` (its value, scope, window, limits and funder), each
    with its own random code (``prefix`` + ``length`` characters), unused, marked as generated from
    it. Codes already taken (any case) are drawn again; 31^10 codes make that rare."""
    if not 1 <= count <= MAX_GENERATED:
        raise ValueError(f"count must be 1..{MAX_GENERATED}")
    prefix = prefix.strip().upper()
    codes: set[str] = set()
    while len(codes) < count:
        wanted = {_random_code(prefix, length) for _ in range(count - len(codes))}
        taken = set(Coupon.objects.filter(code__in=wanted).values_list("code", flat=True))
        codes |= wanted - taken
    skip = {"id", "code", "used_count", "generated_from", "created_at"}
    fields = {f.attname: getattr(template, f.attname) for f in Coupon._meta.concrete_fields if f.name not in skip}
    return Coupon.objects.bulk_create(
        [Coupon(**fields, code=code, generated_from=template) for code in sorted(codes)], batch_size=1_000
    )


def _local(moment):
    return timezone.localtime(moment).replace(tzinfo=None) if moment else ""  # the shop's time, as Excel shows


def coupon_codes_workbook(*, coupons) -> IO[bytes]:
    """An .xlsx of ``coupons`` (codes as text cells, see kameng/xlsx.py), one row each."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("coupons")
    sheet.append(["code", "name", "kind", "value", "cap_yuan", "min_spend_yuan", "valid_from", "valid_until",
                  "uses_taken", "total_uses", "per_buyer", "funded_by", "active"])  # fmt: skip
    for coupon in coupons:
        value = f"{coupon.percent}%" if coupon.kind == Coupon.Kind.PERCENT else fen_to_yuan_str(coupon.amount_fen)
        cap = "" if coupon.max_discount_fen is None else fen_to_yuan_str(coupon.max_discount_fen)
        sheet.append(
            xlsx.row(
                sheet,
                [
                    coupon.code,
                    coupon.name,
                    coupon.kind,
                    value,
                    cap,
                    fen_to_yuan_str(coupon.min_spend_fen),
                    _local(coupon.starts_at),
                    _local(coupon.ends_at),
                    coupon.used_count,
                    coupon.total_limit if coupon.total_limit is not None else "",
                    coupon.per_user_limit if coupon.per_user_limit is not None else "",
                    coupon.funded_by,
                    "yes" if coupon.is_active else "no",
                ],
            )
        )
    return xlsx.saved(workbook)
