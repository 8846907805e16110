"""A signed-in buyer on a phone tops up the wallet through the sandbox and pays an order with it."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client

from accounts import wallet
from catalog.models import Sku
from orders import selectors
from orders.models import Order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}


def sign_in(context, live_server, user, password) -> None:
    client = Client()
    assert client.login(email=user.email, password=password)
    context.add_cookies(
        [
            {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
             "url": live_server.url},
            {"name": "django_language", "value": "en", "url": live_server.url},
        ]
    )  # fmt: skip


def test_top_up_then_pay_an_order_from_the_balance(page, live_server, demo_shop, user, password):
    sign_in(page.context, live_server, user, password)

    page.goto("/me/wallet/")
    assert page.locator("#wallet-balance").inner_text() == "¥0.00"
    page.get_by_role("button", name="¥100.00").click()
    page.wait_for_url(re.compile(r"/orders/K\d+/$"))
    assert page.get_by_text("Wallet top-up ¥100.00").is_visible()
    assert page.get_by_role("button", name=re.compile("wallet balance")).count() == 0
    page.get_by_role("button", name=re.compile(r"^Pay ¥100\.00 with")).click()
    page.wait_for_url("**/payments/sandbox/**")
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url(re.compile(r"/orders/K\d+/$"))
    assert page.get_by_text("credited to your wallet").is_visible()
    assert wallet.balance_fen(user) == 10_000

    sku = Sku.objects.get(product__slug="steam-wallet", label="100元")
    page.goto("/p/steam-wallet/")
    page.locator(f'input[name="sku"][value="{sku.pk}"]').check()
    page.get_by_role("button", name="Buy now").click()
    page.wait_for_url("**/orders/checkout/")
    if page.locator("#id_email").input_value() == "":
        page.locator("#id_email").fill(user.email)
    # The balance covers the order: offered first (and preselected) on the checkout form.
    assert page.get_by_label("Wallet balance (¥100.00)").is_checked()
    page.get_by_role("button", name="Place order and pay ¥96.50").click()

    page.wait_for_url(re.compile(r"/orders/K\d+/$"))
    assert page.locator("p.status").inner_text() == "Delivered"
    order = Order.objects.filter(kind="goods").get()
    assert (order.buyer, order.status) == (user, Order.Status.DELIVERED)
    [code] = [secret.code for entry in selectors.delivered_codes(order=order) for secret in entry.secrets]
    assert page.locator("code.code").first.inner_text() == code
    page.goto("/me/wallet/")
    assert page.locator("#wallet-balance").inner_text() == "¥3.50"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
