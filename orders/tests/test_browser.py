"""Buying in a real Chromium at phone size (Playwright): product page → buy now → checkout (the way to
pay chosen there) → sandbox payment → codes on the order page; paying again from the order page;
look-up from another browser; after-sales from the order page.

Celery is eager in tests, so delivery runs in the live server's request that confirms the payment.
"""

from __future__ import annotations

import re

import pytest

from catalog.models import Sku
from orders import selectors
from orders.models import AfterSalesRequest, Order
from orders.tests.conftest import image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def english(context, live_server) -> None:
    context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])


def delivered_codes(order: Order) -> list[str]:
    return [secret.code for entry in selectors.delivered_codes(order=order) for secret in entry.secrets]


def test_guest_buys_pays_sees_codes_and_looks_the_order_up_again(page, browser, live_server, demo_shop):
    english(page.context, live_server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    missing = []  # every request the pages make (styles, scripts, the icon) must find something
    page.on("response", lambda response: response.status >= 400 and missing.append(response.url))
    sku = Sku.objects.get(product__slug="steam-wallet", label="100元")

    page.goto("/p/steam-wallet/")
    page.locator(f'input[name="sku"][value="{sku.pk}"]').check()
    page.get_by_role("button", name="Buy now").click()
    page.wait_for_url("**/orders/checkout/")
    assert f"{sku.label_en} · " in page.locator(".checkout-line").first.inner_text()  # the English label
    page.locator("#id_email").fill("phone-buyer@example.com")
    # The way to pay is chosen on the checkout form (the only gateway here is preselected), so
    # placing the order goes straight to the gateway's page.
    assert page.get_by_label("Sandbox (test payments)").is_checked()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_role("button", name="Place order and pay ¥96.50").click()
    page.wait_for_url("**/payments/sandbox/**")
    order = Order.objects.get(email="phone-buyer@example.com")
    assert order.status == Order.Status.PENDING_PAYMENT and order.payments.count() == 1

    # The buyer backs out at the gateway: the order waits, codes held, with a countdown and the pay buttons.
    page.get_by_role("button", name="Fail / cancel").click()
    page.wait_for_url(f"**{order.get_absolute_url()}")
    countdown = page.locator("#countdown")
    assert countdown.is_visible()
    assert re.fullmatch(r"1[45]:\d\d", countdown.inner_text())  # ticking mm:ss, about 15 minutes
    secret = page.locator("strong.secret").inner_text()
    assert len(secret) == 10
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_role("button", name=re.compile(r"^Pay ¥96\.50 with")).click()
    page.wait_for_url("**/payments/sandbox/**")
    page.get_by_role("button", name="Pay", exact=True).click()

    page.wait_for_url(f"**{order.get_absolute_url()}")
    assert page.locator("p.status").inner_text() == "Delivered"
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    [code] = delivered_codes(order)
    assert page.locator("code.code").first.inner_text() == code
    copy = page.locator("button.copy").first
    assert copy.is_visible()
    copy.click()
    assert page.evaluate("navigator.clipboard.readText()") == code
    assert page.locator("strong.secret").count() == 0  # the secret was shown once
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert missing == []

    # Another device: nothing without the secret, everything with number + secret.
    other = browser.new_context(viewport=PHONE, base_url=live_server.url)
    try:
        english(other, live_server)
        tab = other.new_page()
        response = tab.goto(order.get_absolute_url())
        assert response.status == 404
        tab.goto("/orders/lookup/")
        tab.locator("#id_number").fill(order.number)
        tab.locator("#id_secret").fill("WRONG12345")
        tab.get_by_role("button", name="Find").click()
        assert tab.get_by_text("No order matches").is_visible()
        tab.locator("#id_number").fill(order.number)
        tab.locator("#id_secret").fill(secret.lower())  # read over the phone: case does not matter
        tab.get_by_role("button", name="Find").click()
        tab.wait_for_url(f"**{order.get_absolute_url()}")
        assert tab.locator("code.code").first.inner_text() == code
    finally:
        other.close()


def test_buyer_reports_a_bad_code_from_the_order_page(page, live_server, stocked_sku, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    english(page.context, live_server)
    page.goto(stocked_sku.product.get_absolute_url())
    page.locator(f'input[name="sku"][value="{stocked_sku.pk}"]').check()
    page.get_by_role("button", name="Buy now").click()
    page.locator("#id_email").fill("reporter@example.com")
    page.get_by_role("button", name=re.compile(r"^Place order and pay")).click()
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url(re.compile(r"/orders/K\d+/$"))
    assert page.locator("p.status").inner_text() == "Delivered"

    page.get_by_text("Problem with your codes? Ask the merchant").click()
    page.locator("#id_reason").select_option("invalid_code")
    page.locator("#id_message").fill("The game says the code was already used.")
    shot = tmp_path / "screenshot.png"
    shot.write_bytes(image_bytes("PNG"))
    page.locator("#id_evidence").set_input_files(str(shot))
    page.locator("#after-sales-submit").click()

    page.wait_for_url(re.compile(r"/orders/K\d+/#after-sales$"))
    assert page.locator(".after-sales-request .after-sales-status").inner_text() == "waiting for the merchant"
    assert page.locator("#after-sales-form").count() == 0
    request = AfterSalesRequest.objects.get()
    assert request.order.email == "reporter@example.com" and request.evidence
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
