"""Card-code stock under concurrency: the one module that moves a code between its states.

    available ──take + reserve──▶ reserved ──sell──▶ sold
        ▲                            │
        └────────release─────────────┘   (an unpaid order expired or was cancelled)
    available / sold ──void──▶ void      (withdrawn, or replaced in after-sales)

Checkout, delivery and after-sales (``orders``) call these functions inside their own transaction,
with the order row already locked; imports and the merchant's void live in ``catalog`` as well.
Nothing outside catalog writes ``CardCode`` rows. What the database guarantees on its own: a
single-use code is sold at most once (``CHECK reusable OR times_sold <= 1``) and held by at most one
order item (the partial unique constraint on ``OrderItemCode``).

*For sale now* means available, or reserved by an order whose deadline has passed: allocation never
waits for the expiry sweep. Rows are locked in the lock order of ``orders/locks.py`` (codes come
after Order and Payment; several codes in ascending id; allocation with ``SKIP LOCKED``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from django.db.models import F, Q
from django.utils import timezone

from catalog.models import CardCode, Sku
from catalog.signals import send_stock_changed

Status = CardCode.Status


def for_sale_parts(prefix: str = "", *, now=None) -> tuple[Q, Q]:
    """The two kinds of codes that can be sold now: (available, reserved past their deadline).

    Apart, each is served by its own partial index (``cardcode_available``,
    ``cardcode_reserved_until``) and a scan of it can stop early; OR-ed together (:func:`for_sale_q`)
    PostgreSQL has to gather every for-sale code first. ``prefix`` is the path from the queried
    model to CardCode, e.g. ``"codes__"`` from Sku.
    """
    now = now or timezone.now()
    return (
        Q(**{f"{prefix}status": Status.AVAILABLE}),
        Q(**{f"{prefix}status": Status.RESERVED, f"{prefix}reserved_until__lt": now}),
    )


def for_sale_q(prefix: str = "", *, now=None) -> Q:
    """Q for codes that can be sold now: available, or reserved past their deadline."""
    available, expired = for_sale_parts(prefix, now=now)
    return available | expired


def take(*, sku: Sku | int, quantity: int, now) -> list[int]:
    """Lock up to ``quantity`` codes of ``sku`` that are for sale now, skipping rows other
    transactions hold. Returns their ids; the caller reserves or sells them in the same transaction
    (and lets go of an expired reservation's old holder first: see orders.services.take_codes).

    Two index scans that each stop after the rows they take (plus the ones other checkouts hold),
    so the cost does not grow with the SKU's stock — where one query with ``for_sale_q``'s OR made
    PostgreSQL gather every for-sale code and sort them (25 ms a checkout with 100,000 codes):
    first reservations past their deadline, longest expired first (partial index
    ``cardcode_reserved_until``), then available codes, lowest id first (partial index
    ``cardcode_available``). In that order, a code the expiry sweep releases between the two
    statements is still found by the second one."""
    ids = _take_free(sku=sku, quantity=quantity, now=now, taken=[])
    for _attempt in range(TAKE_RETRIES):
        if len(ids) >= quantity:
            break
        # SKIP LOCKED passed over rows another transaction holds. When the stock says there are
        # enough codes for sale, some are held only for milliseconds — by the expiry sweep putting
        # them back, or a checkout about to fail — so look again instead of saying "sold out".
        wanted = quantity - len(ids)
        for_sale = CardCode.objects.filter(for_sale_q(now=now), sku=sku).exclude(pk__in=ids)[:wanted]
        if for_sale.count() < wanted:
            break
        time.sleep(TAKE_RETRY_PAUSE)
        ids += _take_free(sku=sku, quantity=wanted, now=now, taken=ids)
    return ids


# A checkout short of codes because other transactions held some looks again, this often, this long apart.
TAKE_RETRIES = 3
TAKE_RETRY_PAUSE = 0.02  # seconds


def _take_free(*, sku: Sku | int, quantity: int, now, taken: list[int]) -> list[int]:
    available, expired = for_sale_parts(now=now)
    rows = CardCode.objects.select_for_update(skip_locked=True).filter(sku=sku)
    if taken:  # rows this transaction locked already: SKIP LOCKED does not skip our own
        rows = rows.exclude(pk__in=taken)
    locked = rows.values_list("pk", flat=True)
    ids = list(locked.filter(expired).order_by("reserved_until")[:quantity])
    if len(ids) < quantity:
        ids += locked.filter(available).order_by("pk")[: quantity - len(ids)]
    return ids


def has_for_sale(*, sku: Sku | int, now) -> bool:
    return CardCode.objects.filter(for_sale_q(now=now), sku=sku).exists()


def first_for_sale(*, sku: Sku | int, now) -> int | None:
    """The code a reusable SKU hands out (every buyer gets the same one): its lowest for-sale id."""
    return CardCode.objects.filter(for_sale_q(now=now), sku=sku).order_by("pk").values_list("pk", flat=True).first()


def reserve(*, code_ids: list[int], until) -> None:
    """Hold codes just taken for an unpaid order until its deadline."""
    CardCode.objects.filter(pk__in=code_ids).update(status=Status.RESERVED, reserved_until=until)


def lock(*, code_ids: Iterable[int], status: str | None = None) -> list[int]:
    """Lock these codes in ascending id (waiting for other holders); with ``status``, only those
    still in it. Returns the ids locked."""
    queryset = CardCode.objects.select_for_update().filter(pk__in=list(code_ids))
    if status is not None:
        queryset = queryset.filter(status=status)
    return list(queryset.order_by("pk").values_list("pk", flat=True))


def release(*, code_ids: list[int]) -> None:
    """Reserved codes go back on sale (their order expired or was cancelled); the caller locked them
    and checked they are still its own."""
    if not code_ids:
        return
    CardCode.objects.filter(pk__in=code_ids).update(status=Status.AVAILABLE, reserved_until=None)
    send_stock_changed(sku_ids=CardCode.objects.filter(pk__in=code_ids).values_list("sku_id", flat=True))


def sell(*, code_ids: list[int], now) -> None:
    """Single-use codes handed over: sold once (the database refuses a second sale)."""
    CardCode.objects.filter(pk__in=code_ids).update(
        status=Status.SOLD, sold_at=now, reserved_until=None, times_sold=F("times_sold") + 1
    )


def sell_reusable(*, code_id: int, now) -> None:
    """A reusable code handed over once more: it stays available and counts the sale."""
    CardCode.objects.filter(pk=code_id).update(sold_at=now, times_sold=F("times_sold") + 1)


def void(*, code_ids: list[int], now) -> None:
    """Codes that must never be handed out again (replaced in after-sales)."""
    CardCode.objects.filter(pk__in=code_ids).update(status=Status.VOID, voided_at=now)
