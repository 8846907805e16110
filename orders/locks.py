"""Row locks on orders, and the one order in which every transaction takes its locks.

The lock order (stated here once; docs/ARCHITECTURE.md repeats it, docstrings point here). When a
transaction locks rows of several kinds it takes them in this order, and within one kind in
ascending primary key:

1. ``orders.Order`` — :func:`lock_order` (every change to an order's money or stock starts here)
2. ``orders.AfterSalesRequest`` — claimed with a conditional UPDATE under the order lock
3. ``payments.Payment`` — ``payments/locks.py`` (:func:`payments.locks.lock_order_and_payment`)
4. ``catalog.CardCode`` — ``catalog/allocation.py`` (``SKIP LOCKED`` when allocating, by SKU id;
   expired reservations before available codes; ``lock`` waits, ascending id)
5. ``orders.OrderItemCode`` — always updated after the codes they point to are locked
6. ``accounts.Wallet`` — one user's, in ``accounts.wallet.move``
7. ``payments.Settlement`` — by merchant id (``payments/locks.py``); ledger and wallet entries are
   insert-only and never locked
8. ``orders.Membership`` — one buyer's, :func:`lock_membership` (granted by delivery, shortened at the
   end of a refund's chain in ``orders.services.record_refund``)

Low-stock checks lock ``catalog.Sku`` rows alone (``FOR NO KEY UPDATE``, ascending id) in a
transaction of their own, after the stock change committed (``catalog/stock.py``), so they never
interleave with the chain above. No network call is made while any of these locks is held.
"""

from __future__ import annotations

from django.db.models import QuerySet

from orders.models import Membership, Order


def lock_order(order_id: int) -> Order:
    """Lock one order (step 1) and return it fresh from the database. Call inside ``transaction.atomic``."""
    return Order.objects.select_for_update().get(pk=order_id)


def lock_order_if_any(order_id: int) -> Order | None:
    """:func:`lock_order` for an id that may not exist (a task for a deleted order)."""
    return Order.objects.select_for_update().filter(pk=order_id).first()


def lock_free_orders(queryset: QuerySet[Order], *, limit: int) -> list[Order]:
    """Lock up to ``limit`` orders of ``queryset`` in ascending id, skipping those another
    transaction holds (periodic sweeps: two runs at once share the work instead of waiting)."""
    return list(queryset.select_for_update(skip_locked=True).order_by("pk")[:limit])


def lock_membership(user_id: int) -> Membership | None:
    """Lock one buyer's annual membership (step 8), if there is one. Inside ``transaction.atomic``."""
    return Membership.objects.select_for_update().filter(user_id=user_id).first()
