"""Coupon uses under a rush, on a real PostgreSQL with real threads (orders/tests/test_concurrency.py
has the pattern): the total limit and the per-buyer limit hold, and expired orders give their uses back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from accounts.models import User
from marketing.models import Coupon, CouponRedemption
from orders import services
from orders.models import Order
from orders.tests.conftest import make_sku, place
from orders.tests.test_concurrency import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


def in_english(target):
    """Each thread says why in English (the language is per thread; the shop's default is Chinese)."""

    def wrapped(index):
        with translation.override("en"):
            return target(index)

    return wrapped


def test_a_10_use_coupon_under_60_concurrent_checkouts_is_used_exactly_10_times(demo_shop):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=80)
    coupon = Coupon.objects.create(code="RUSH", name="rush", amount_fen=20, total_limit=10, per_user_limit=None)

    results = run_in_threads(60, in_english(lambda i: place(sku, 1, email=f"rush{i}@example.com", coupon_code="rush")))

    placed = [r for r in results if isinstance(r, services.PlacedOrder)]
    refused = [r for r in results if isinstance(r, services.CheckoutError)]
    assert [r for r in results if not isinstance(r, services.PlacedOrder | services.CheckoutError)] == []
    assert (len(placed), len(refused)) == (10, 50)  # nobody placed at a price they did not ask for
    assert {str(r) for r in refused} <= {
        "This coupon has been used up.",
        "The coupon RUSH has just been used up. Please check the new total.",
    }
    coupon.refresh_from_db()
    assert coupon.used_count == 10
    assert CouponRedemption.objects.filter(coupon=coupon, status="held").count() == 10
    assert sorted(p.order.discount_fen for p in placed) == [20] * 10

    # The held uses come back when the orders expire unpaid, and can be taken again.
    Order.objects.filter(pk__in=[p.order.pk for p in placed]).update(
        reserved_until=timezone.now() - timedelta(seconds=1)
    )
    assert services.expire_overdue_orders() == 10
    coupon.refresh_from_db()
    assert coupon.used_count == 0
    again = run_in_threads(20, lambda i: place(sku, 1, email=f"again{i}@example.com", coupon_code="RUSH"))
    assert sum(isinstance(r, services.PlacedOrder) for r in again) == 10
    coupon.refresh_from_db()
    assert coupon.used_count == 10


def test_one_buyers_concurrent_checkouts_use_a_one_per_buyer_coupon_once(demo_shop):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=30)
    coupon = Coupon.objects.create(code="ONCE", name="once", amount_fen=20, per_user_limit=1)
    buyer = User.objects.create_user(email="rusher@example.com", password="x-long-pass-1")

    results = run_in_threads(20, lambda i: place(sku, 1, buyer=buyer, email=buyer.email, coupon_code="ONCE"))

    assert sum(isinstance(r, services.PlacedOrder) for r in results) == 1
    assert all(isinstance(r, services.PlacedOrder | services.CheckoutError) for r in results)
    assert CouponRedemption.objects.filter(coupon=coupon, user=buyer).count() == 1
    coupon.refresh_from_db()
    assert coupon.used_count == 1
