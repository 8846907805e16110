"""Quantities in a real Chromium at phone size (issue 11): the product page's running total, the
cart's line totals, quantity change and remove button, and quantities changed on the checkout page."""

from __future__ import annotations

import pytest

from catalog.models import Sku
from orders.models import Order
from orders.tests.test_browser import PHONE, english

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_running_total_cart_line_totals_remove_and_checkout_quantities(page, live_server, demo_shop):
    english(page.context, live_server)
    missing = []
    page.on("response", lambda response: response.status >= 400 and missing.append(response.url))
    fifty = Sku.objects.get(product__slug="steam-wallet", label="50元")  # ¥48.50
    hundred = Sku.objects.get(product__slug="steam-wallet", label="100元")  # ¥96.50

    page.goto("/p/steam-wallet/")
    total = page.locator("#running-total")
    assert total.inner_text() == "¥48.50"  # the first denomination × 1
    page.locator(f'input[name="sku"][value="{hundred.pk}"]').check()
    assert total.inner_text() == "¥96.50"
    page.locator("#quantity").fill("3")
    assert total.inner_text() == "¥289.50"
    assert page.locator("#running-total-note").inner_text() == "¥96.50 × 3"
    page.locator(f'input[name="sku"][value="{fifty.pk}"]').check()
    assert total.inner_text() == "¥145.50"
    page.locator("#quantity").fill("11")  # above the per-order limit: no total for it
    assert total.inner_text() == "—"
    page.locator("#quantity").fill("2")
    assert total.inner_text() == "¥97.00"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url("**/orders/cart/")

    page.goto("/p/iqiyi-vip/")
    page.get_by_role("button", name="Add to cart").click()  # 30天, ¥19.90
    page.wait_for_url("**/orders/cart/")
    line_totals = page.locator(".cart-line .line-total")
    assert line_totals.all_inner_texts() == ["¥97.00", "¥19.90"]
    assert page.locator(".cart-line .limits").first.inner_text() == "at most 10 per order"  # 30 left: not what binds

    # A changed quantity is sent at once (no button to find) and the line total follows.
    quantity = page.locator(f'.cart-line[data-sku="{fifty.pk}"] input[name="quantity"]')
    quantity.fill("3")
    with page.expect_navigation():
        quantity.dispatch_event("change")
    assert line_totals.all_inner_texts() == ["¥145.50", "¥19.90"]
    assert page.locator("dd.total").inner_text() == "¥165.40"

    page.locator('.cart-line:has-text("iQIYI")').get_by_role("button", name="Remove").click()
    page.wait_for_load_state()
    assert page.get_by_text("iQIYI Gold VIP 30天 was removed from your cart.").is_visible()
    assert line_totals.all_inner_texts() == ["¥145.50"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Checkout: the quantity is changed there, the total and the pay button follow, the e-mail stays.
    page.get_by_role("button", name="Check out").click()
    page.wait_for_url("**/orders/checkout/")
    page.locator("#id_email").fill("changer@example.com")
    at_checkout = page.locator(f'input[name="qty_{fifty.pk}"]')
    at_checkout.fill("2")
    with page.expect_navigation():
        at_checkout.dispatch_event("change")
    assert page.locator("dd.total").inner_text() == "¥97.00"
    assert page.locator("#id_email").input_value() == "changer@example.com"
    assert not Order.objects.exists()
    page.locator("#id_email").press("Enter")  # Enter in the form places the order (not "update")
    page.wait_for_url("**/payments/sandbox/**")
    order = Order.objects.get()
    assert order.total_fen == 9_700 and [item.quantity for item in order.items.all()] == [2]
    assert missing == []
