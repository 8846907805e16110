"""The lifecycle signals apps above orders build on (orders/signals.py): sent in the transaction of
the change, and an offer a receiver finds gone at placement stops the order whole."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import CardCode
from orders import pricing, services, signals
from orders.models import Order
from orders.tests.conftest import pay, place
from payments import services as payments
from payments.models import Refund

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard():
    """Every lifecycle signal received, as (name, order number, extra)."""
    events: list[tuple] = []
    receivers = {}
    for name in ("order_placed", "order_released", "order_paid", "order_refunded"):

        def receiver(sender, order, name=name, **kwargs):
            extra = {key: value for key, value in kwargs.items() if key != "signal"}
            if name == "order_placed":
                extra = {"total_fen": extra["quote"].total_fen}
            events.append((name, order.number, extra))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield events
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def test_placing_paying_and_refunding_are_told(stocked_sku, heard, user):
    order = place(stocked_sku, 2, buyer=user, email=user.email).order
    pay(order)
    payments.refund_amount_by_operator(
        order=Order.objects.get(pk=order.pk), amount_fen=500, note="t", actor=None, route=Refund.Route.WALLET
    )
    assert heard == [
        ("order_placed", order.number, {"total_fen": 2_000}),
        ("order_paid", order.number, {"late": False}),
        ("order_refunded", order.number, {"before_fen": 0, "after_fen": 500}),
    ]


def test_cancelled_and_expired_orders_are_released(stocked_sku, heard):
    cancelled = place(stocked_sku, 1).order
    services.cancel_order(order=cancelled)
    expired = place(stocked_sku, 1).order
    Order.objects.filter(pk=expired.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))
    services.expire_overdue_orders()
    assert [(name, number) for name, number, _extra in heard if name == "order_released"] == [
        ("order_released", cancelled.number), ("order_released", expired.number),
    ]  # fmt: skip


def test_an_offer_gone_at_placement_stops_the_order_and_says_why(stocked_sku):
    def gone(sender, order, quote, **kwargs):
        raise pricing.OfferUnavailable("That coupon has just been used up.")

    signals.order_placed.connect(gone)
    try:
        with pytest.raises(services.CheckoutError, match="just been used up"):
            place(stocked_sku, 2)
    finally:
        signals.order_placed.disconnect(gone)
    assert not Order.objects.exists()
    assert CardCode.objects.filter(sku=stocked_sku, status=CardCode.Status.AVAILABLE).count() == 5
