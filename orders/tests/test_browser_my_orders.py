"""'My orders' in a real Chromium at phone size (issue 13): switch tabs, search, pay from a row."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client

from orders import aftersales
from orders.tests.conftest import delivered, make_sku, place

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


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_phone_buyer_switches_tabs_searches_and_pays_from_the_list(page, live_server, demo_shop, user, password):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=10, label="列表面额", price_fen=1000)
    unpaid = place(sku, 1, buyer=user, email=user.email).order
    done = delivered(sku, 2, buyer=user, email=user.email)
    claimed = delivered(sku, 1, buyer=user, email=user.email)
    aftersales.open_request(order=claimed, reason="invalid_code", message="第一张无效", actor=user)
    page.set_viewport_size(PHONE)
    sign_in(page.context, live_server, user, password)

    page.goto("/orders/")
    rows = page.locator("li.order-row")
    assert rows.count() == 3 and fits(page)
    tabs = page.locator("nav.order-tabs a")
    assert [re.sub(r"\s+", " ", t).strip() for t in tabs.all_inner_texts()] == [
        "All 3",
        "Unpaid 1",
        "Delivered 2",
        "After-sales 1",
        "Refunds 0",
    ]

    page.locator('nav.order-tabs a[data-tab="unpaid"]').click()
    page.wait_for_url(re.compile(r"tab=unpaid"))
    assert rows.count() == 1 and rows.first.locator(".order-number").inner_text() == unpaid.number
    assert page.locator('nav.order-tabs a[aria-current="page"]').get_attribute("data-tab") == "unpaid"

    page.locator('nav.order-tabs a[data-tab="delivered"]').click()
    page.wait_for_url(re.compile(r"tab=delivered"))
    assert rows.count() == 2 and rows.first.get_by_role("link", name="View codes").is_visible()
    page.locator('nav.order-tabs a[data-tab="after_sales"]').click()
    page.wait_for_url(re.compile(r"tab=after_sales"))
    assert rows.count() == 1 and "After-sales: waiting for the merchant" in rows.first.inner_text()

    # Search within the delivered tab: the tab is kept, only the matching order is left.
    page.locator('nav.order-tabs a[data-tab="delivered"]').click()
    page.wait_for_url(re.compile(r"tab=delivered"))
    search = page.get_by_role("searchbox", name="Order number or product")
    search.fill(done.number[-6:])
    search.press("Enter")
    page.wait_for_url(re.compile(r"q=" + done.number[-6:]))
    assert "tab=delivered" in page.url
    assert rows.count() == 1 and rows.first.locator(".order-number").inner_text() == done.number
    assert fits(page)

    search = page.get_by_role("searchbox", name="Order number or product")
    search.fill("xyz")
    search.press("Enter")
    page.wait_for_url(re.compile(r"q=xyz"))
    assert rows.count() == 0
    assert page.locator("ul.order-rows li.empty").inner_text() == "Nothing matches “xyz”."

    # Back to all, paying the unpaid order from its row goes to the gateway.
    page.goto("/orders/?tab=unpaid")
    page.get_by_role("button", name=re.compile(r"^Pay ¥10\.00 with")).click()
    page.wait_for_url("**/payments/sandbox/**")
