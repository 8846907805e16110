"""A guest buys in a real Chromium at phone size, signs up with the same e-mail, opens the
verification link from the mail and finds the order in "my orders" (issue 13)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail

from catalog.models import Sku
from orders.models import Order
from orders.tests.test_browser import delivered_codes, english

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-Passw0rd!"
CONFIRM_LINK = re.compile(r"https?://[^\s\"'<>]*/accounts/confirm-email/[^\s\"'<>]+/")


def test_guest_buys_signs_up_verifies_and_finds_the_order_in_my_orders(page, live_server, demo_shop):
    english(page.context, live_server)
    sku = Sku.objects.get(product__slug="steam-wallet", label="100元")

    # A guest buys and pays through the sandbox, typing the address in mixed case.
    page.goto("/p/steam-wallet/")
    page.locator(f'input[name="sku"][value="{sku.pk}"]').check()
    page.get_by_role("button", name="Buy now").click()
    page.wait_for_url("**/orders/checkout/")
    page.locator("#id_email").fill("Returning.Guest@Example.com")
    page.get_by_role("button", name=re.compile(r"^Place order and pay")).click()
    page.wait_for_url("**/payments/sandbox/**")
    page.get_by_role("button", name="Pay", exact=True).click()
    order = Order.objects.get(email="returning.guest@example.com")
    page.wait_for_url(f"**{order.get_absolute_url()}")
    assert page.locator("p.status").inner_text() == "Delivered"

    # Signs up with the same address: signed in, but not verified, so "my orders" is still empty.
    page.goto("/accounts/signup/")
    page.locator("#id_email").fill("returning.guest@example.com")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("#id_password2").press("Enter")
    page.goto("/orders/")
    assert page.get_by_role("link", name=order.number).count() == 0
    order.refresh_from_db()
    assert order.buyer_id is None

    # Opens the verification link from the mail and confirms.
    links = [
        link for m in mail.outbox if m.to == ["returning.guest@example.com"] for link in CONFIRM_LINK.findall(m.body)
    ]
    assert len(links) == 1
    page.goto(urlsplit(links[0]).path)
    with page.expect_navigation():
        page.locator('form[action*="/accounts/confirm-email/"] [type="submit"]').click()

    page.goto("/orders/")
    link = page.get_by_role("link", name=order.number)
    assert link.is_visible()
    # A long e-mail as the name in the header must not widen the phone page ("Sign out" stays on screen).
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    assert page.get_by_role("button", name="Sign out").is_visible()
    link.click()
    page.wait_for_url(f"**{order.get_absolute_url()}")
    assert page.locator("p.status").inner_text() == "Delivered"
    [code] = delivered_codes(order)
    assert page.locator("code.code").first.inner_text() == code
    order.refresh_from_db()
    assert order.buyer.email == "returning.guest@example.com"
