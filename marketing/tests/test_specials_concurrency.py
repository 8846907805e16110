"""Flash specials under a rush, on a real PostgreSQL with real threads (as orders/tests/test_concurrency.py):
the cap and the per-buyer limit hold, and units released by expiry are sold again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone, translation

from marketing.models import FlashSpecial, SpecialRedemption
from marketing.tests.test_specials import special_on
from orders import services
from orders.models import Order, OrderItem
from orders.tests.conftest import make_sku, place
from orders.tests.test_concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sku(demo_shop):
    return make_sku(demo_shop.products["steam-wallet"], codes_count=120, price_fen=500)


def special_units_sold(special) -> int:
    """Units of orders priced at the special (held or used), from the orders themselves."""
    return OrderItem.objects.filter(sku=special.sku, order__status=Order.Status.PENDING_PAYMENT).aggregate(
        units=Sum("discount_fen")
    )["units"] // (special.sku.price_fen - special.special_price_fen)


def test_a_cap_of_10_under_50_checkouts_sells_exactly_10_at_the_special_price(sku):
    special = special_on(sku, price_fen=100, cap=10, per_buyer=1)

    def checkout(i):
        with translation.override("en"):
            return place(sku, 1, email=f"rush{i}@example.com")

    results = run_in_threads(50, checkout)

    placed = [r for r in results if isinstance(r, services.PlacedOrder)]
    refused = [r for r in results if isinstance(r, services.CheckoutError)]
    assert [r for r in results if not isinstance(r, services.PlacedOrder | services.CheckoutError)] == []
    at_special = [r.order for r in placed if r.order.total_fen == 100]
    assert len(at_special) == 10
    # everyone else: priced at the list price, or told it sold out at the special price meanwhile
    assert all(r.order.total_fen == 500 for r in placed if r.order.total_fen != 100)
    assert all("sold out at the special price" in str(r) for r in refused)
    special.refresh_from_db()
    assert special.sold == 10
    assert SpecialRedemption.objects.filter(special=special).aggregate(units=Sum("quantity"))["units"] == 10
    assert special_units_sold(special) == 10


def test_the_per_buyer_limit_holds_when_one_buyer_rushes(sku, user):
    special = special_on(sku, price_fen=100, cap=50, per_buyer=2)

    results = run_in_threads(20, lambda i: place(sku, 1, buyer=user, email=user.email))

    placed = [r.order for r in results if isinstance(r, services.PlacedOrder)]
    assert sum(1 for order in placed if order.total_fen == 100) == 2
    special.refresh_from_db()
    assert special.sold == 2
    assert SpecialRedemption.objects.filter(buyer_key=f"user:{user.pk}").aggregate(units=Sum("quantity"))["units"] == 2


def test_units_released_by_expiry_are_sold_again_at_the_special_price(sku):
    special = special_on(sku, price_fen=100, cap=10, per_buyer=1)
    first = run_in_threads(30, lambda i: place(sku, 1, email=f"first{i}@example.com"))
    assert sum(1 for r in first if isinstance(r, services.PlacedOrder) and r.order.total_fen == 100) == 10
    overdue = timezone.now() - timedelta(seconds=1)
    Order.objects.filter(status=Order.Status.PENDING_PAYMENT).update(reserved_until=overdue)
    services.expire_overdue_orders()
    special.refresh_from_db()
    assert special.sold == 0

    second = run_in_threads(30, lambda i: place(sku, 1, email=f"second{i}@example.com"))

    assert sum(1 for r in second if isinstance(r, services.PlacedOrder) and r.order.total_fen == 100) == 10
    special.refresh_from_db()
    assert special.sold == 10
    assert FlashSpecial.objects.get(pk=special.pk).left == 0
