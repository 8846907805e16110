"""Signals of the catalog.

``stock_changed`` is sent (after the transaction commits) whenever codes of some SKUs were added,
sold, voided or released, with ``sku_ids`` (a list of ints). Low-stock alerts listen to it;
senders use :func:`send_stock_changed`.

``demo_seeded`` is sent by ``catalog.demo.seed_demo`` inside its transaction, so that apps above
the catalog add their own demo rows (orders: an annual-membership plan) without the catalog
importing them.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.dispatch import Signal

stock_changed = Signal()
demo_seeded = Signal()


def send_stock_changed(*, sku_ids: Iterable[int]) -> None:
    ids = sorted(set(sku_ids))
    if ids:
        transaction.on_commit(lambda: stock_changed.send(sender=None, sku_ids=ids), robust=True)
