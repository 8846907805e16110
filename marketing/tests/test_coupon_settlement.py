"""Who pays for a coupon, through payment, settlement and refunds, with ``check_ledger`` clean: a
merchant-funded coupon lowers the merchant's settlement, a platform-funded one comes out of the
platform's commission (payments/settlement.py reads ``OrderItem.platform_funded_fen``)."""

from __future__ import annotations

import uuid

import pytest

from marketing.models import Coupon, CouponRedemption
from orders import services as order_services
from orders.models import Order, OrderItem
from orders.tests.conftest import pay, place
from payments import ledger, settlement
from payments.models import Settlement
from payments.tests.test_settlement import assert_ledger_ok, refund, sku_of

pytestmark = pytest.mark.django_db(transaction=True)


def delivered_with_coupon(sku, quantity: int, code: str) -> Order:
    order = order_services.place_order(
        lines=[order_services.CartLine(sku_id=sku.pk, quantity=quantity)], email=f"{uuid.uuid4().hex[:8]}@example.com",
        idempotency_key=uuid.uuid4().hex, coupon_code=code,
    ).order  # fmt: skip
    pay(order)
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    return order


def test_a_merchant_funded_coupon_lowers_the_merchants_settlement(demo_shop):
    sku = sku_of(demo_shop.products["steam-wallet"], 10_000, "M1")  # commission 10%
    Coupon.objects.create(code="SHOP", name="shop", amount_fen=2_000, funded_by="merchant", merchant=demo_shop.merchant)
    order = delivered_with_coupon(sku, 1, "shop")
    assert (order.total_fen, OrderItem.objects.get(order=order).platform_funded_fen) == (8_000, 0)
    settlement.create_due_settlements()
    row = Settlement.objects.get(order=order)
    assert (row.gross_fen, row.fee_fen, row.merchant_fen) == (8_000, 800, 7_200)  # the merchant paid the 2 000
    assert_ledger_ok()


def test_a_platform_funded_coupon_comes_out_of_the_platforms_commission(demo_shop):
    sku = sku_of(demo_shop.products["steam-wallet"], 10_000, "P1")  # commission 10%: room 1 000
    Coupon.objects.create(code="PLAT", name="platform", kind="percent", percent=8, max_discount_fen=5_000)
    order = delivered_with_coupon(sku, 1, "PLAT")
    assert (order.total_fen, OrderItem.objects.get(order=order).platform_funded_fen) == (9_200, 800)
    settlement.create_due_settlements()
    row = Settlement.objects.get(order=order)
    assert (row.gross_fen, row.fee_fen, row.merchant_fen, row.platform_funded_fen) == (10_000, 1_000, 9_000, 800)
    assert ledger.order_balances(order.pk)["platform_fee"] == 200
    assert_ledger_ok()
    settlement.execute_due_settlements()
    refund(order, 9_200)
    assert ledger.order_balances(order.pk)["platform_fee"] == 0
    assert CouponRedemption.objects.get(order=order).status == "released"
    assert_ledger_ok()


def test_a_use_is_held_used_and_given_back_on_a_full_refund_only(demo_shop):
    ours = sku_of(demo_shop.products["steam-wallet"], 999, "L1")
    coupon = Coupon.objects.create(code="SAVE", name="save", amount_fen=100, total_limit=5)
    order = place(ours, 2, coupon_code="save").order
    assert (order.total_fen, order.discount_fen) == (1_898, 100)
    redemption = CouponRedemption.objects.get(order=order)
    assert (redemption.status, redemption.amount_fen, redemption.email) == ("held", 100, order.email)
    coupon.refresh_from_db()
    assert coupon.used_count == 1
    pay(order)
    redemption.refresh_from_db()
    assert redemption.status == "used"
    refund(order, 1_000)  # partial: still used
    coupon.refresh_from_db()
    assert coupon.used_count == 1
    refund(order, 898)  # the rest: refunded in full
    redemption.refresh_from_db()
    coupon.refresh_from_db()
    assert (redemption.status, coupon.used_count) == ("released", 0)
