"""A shopper's coupon in the browser, phone first: a wrong code is refused with the reason, the right
one takes its amount off the total and the order is placed at that price. With
``KAMENG_SHOTS=<dir>`` the checkout is saved there in both states, at 390×844 and 1440×900, in
Chinese and English (orders/tests/test_browser_loyalty.py's ``shoot``)."""

from __future__ import annotations

import pytest

from catalog.models import Sku
from marketing.models import Coupon, CouponRedemption
from orders.models import Order
from orders.tests.test_browser_loyalty import fits_a_phone, shoot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_shopper_is_told_why_a_code_is_refused_then_applies_one_and_pays_less(page, live_server, demo_shop):
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    Coupon.objects.create(code="SPRING10", name="spring", kind="percent", percent=10, max_discount_fen=500)
    sku = Sku.objects.get(product__slug="steam-wallet", label="100元")  # ¥96.50

    page.goto("/p/steam-wallet/")
    page.locator(f'input[name="sku"][value="{sku.pk}"]').check()
    page.get_by_role("button", name="Buy now").click()
    page.wait_for_url("**/orders/checkout/")
    page.get_by_label("Coupon code").fill("WINTER")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    assert page.locator("#coupon-refusal").inner_text() == "There is no coupon with this code."
    fits_a_phone(page)
    shoot(page, "checkout-coupon-refused")

    page.get_by_label("Coupon code").fill("spring10")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    assert page.locator("#coupon-applied").inner_text() == "Coupon applied: ¥5.00 off."  # 10%, capped at ¥5
    assert page.get_by_text("Coupon SPRING10").is_visible()
    fits_a_phone(page)
    shoot(page, "checkout-coupon-applied")

    page.locator("#id_email").fill("coupon-buyer@example.com")
    page.get_by_role("button", name="Place order and pay ¥91.50").click()
    page.wait_for_url("**/payments/sandbox/**")
    order = Order.objects.get(email="coupon-buyer@example.com")
    assert (order.total_fen, order.discount_fen) == (9_150, 500)
    assert CouponRedemption.objects.get(order=order).status == "held"
