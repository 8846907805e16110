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


RUSH = 100  # concurrent checkouts, all released at once (one database connection each: the test
# PostgreSQL allows 400, kameng/localservices.py, so two xdist workers rushing at once still fit)


def test_a_10_use_coupon_under_100_concurrent_checkouts_is_used_exactly_10_times(demo_shop):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=120)
    coupon = Coupon.objects.create(code="RUSH", name="rush", amount_fen=20, total_limit=10, per_user_limit=None)

    results = run_in_threads(
        RUSH, in_english(lambda i: place(sku, 1, email=f"rush{i}@example.com", coupon_code="rush")), workers=RUSH
    )

    placed = [r for r in results if isinstance(r, services.PlacedOrder)]
    refused = [r for r in results if isinstance(r, services.CheckoutError)]
    assert [r for r in results if not isinstance(r, services.PlacedOrder | services.CheckoutError)] == []
    assert (len(placed), len(refused)) == (10, RUSH - 10)  # nobody placed at a price they did not ask for
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


# --- the coupon wallet (marketing/wallet.py) --------------------------------------------------------------
def test_a_claim_cap_of_10_holds_under_100_concurrent_claims(demo_shop):
    from marketing import wallet
    from marketing.models import CouponGrant

    coupon = Coupon.objects.create(code="GRAB", name="grab", amount_fen=20, claimable=True, claim_limit=10)
    users = [User.objects.create_user(email=f"grab{i}@example.com", password="x-long-pass-1") for i in range(RUSH)]

    results = run_in_threads(RUSH, in_english(lambda i: wallet.claim(coupon, users[i])), workers=RUSH)

    granted = [r for r in results if isinstance(r, CouponGrant)]
    refused = [r for r in results if isinstance(r, wallet.ClaimRefused)]
    assert (len(granted), len(refused)) == (10, RUSH - 10)
    assert {str(r) for r in refused} == {"All of these coupons have been claimed."}
    coupon.refresh_from_db()
    assert coupon.claimed_count == 10 == CouponGrant.objects.filter(coupon=coupon).count()


def test_one_users_concurrent_claims_give_one_grant(demo_shop):
    from marketing import wallet
    from marketing.models import CouponGrant

    coupon = Coupon.objects.create(code="TWICE", name="twice", amount_fen=20, claimable=True, claim_limit=5)
    user = User.objects.create_user(email="clicker@example.com", password="x-long-pass-1")

    results = run_in_threads(20, in_english(lambda i: wallet.claim(coupon, user)), workers=20)

    assert sum(isinstance(r, CouponGrant) for r in results) == 1
    assert all(isinstance(r, CouponGrant | wallet.ClaimRefused) for r in results)
    coupon.refresh_from_db()
    assert coupon.claimed_count == 1 == CouponGrant.objects.filter(coupon=coupon).count()


def test_one_grant_of_a_holders_only_coupon_pays_for_one_of_concurrent_orders(demo_shop):
    from marketing import wallet
    from marketing.models import CouponGrant

    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=30)
    coupon = Coupon.objects.create(code="MINE", name="mine", amount_fen=20, holders_only=True, per_user_limit=None)
    holder = User.objects.create_user(email="holder@example.com", password="x-long-pass-1")
    wallet.grant(coupon, holder, source="operator")

    results = run_in_threads(
        20, in_english(lambda i: place(sku, 1, buyer=holder, email=holder.email, coupon_code="MINE")), workers=20
    )

    placed = [r for r in results if isinstance(r, services.PlacedOrder)]
    assert len(placed) == 1
    assert all(isinstance(r, services.PlacedOrder | services.CheckoutError) for r in results)
    assert CouponGrant.objects.get(coupon=coupon).order == placed[0].order
    coupon.refresh_from_db()
    assert coupon.used_count == 1
