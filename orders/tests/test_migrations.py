"""Data migrations: what existing rows look like after them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(target: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def test_orders_refunding_before_the_lifecycle_table_get_their_cause_and_time():
    # Back to every app's latest migration afterwards, not only orders': migrations of other apps
    # that depend on orders (accounts' points entries point at orders) are unapplied on the way down.
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = migrate([("orders", "0002_top_up_kind")])
    try:
        Order, OrderEvent = old.get_model("orders", "Order"), old.get_model("orders", "OrderEvent")
        from django.utils import timezone

        def order(number: str, status: str) -> object:
            return Order.objects.create(
                number=number, email="b@example.com", status=status, subtotal_fen=100, total_fen=100,
                reserved_until=timezone.now(), idempotency_key=number,
            )  # fmt: skip

        stuck, after_sales, delivered = order("K1", "refunding"), order("K2", "refunding"), order("K3", "delivered")
        OrderEvent.objects.create(order=stuck, kind="delivery_failed", from_status="paid", to_status="refunding")
        OrderEvent.objects.create(
            order=after_sales, kind="after_sales_refund", from_status="delivered", to_status="refunding"
        )
        new = migrate(latest)
        Order = new.get_model("orders", "Order")
        rows = {o.number: (o.refunding_reason, o.status_changed_at is not None) for o in Order.objects.all()}
        assert rows == {"K1": ("out_of_stock", True), "K2": ("after_sales", True), "K3": ("", False)}
        assert stuck.pk and delivered.pk
    finally:
        migrate(latest)
