"""A shopper on a phone sees a flash special's price and a countdown that ticks (static/js/countdown.js)
on list cards and the product page. With SHOTS_DIR set, screenshots in both languages and sizes land
there (for looking at the pages, not for asserting)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from marketing.models import FlashSpecial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_countdown_ticks_on_cards_and_the_product_page(page, live_server, demo_shop):
    product = demo_shop.products["steam-wallet"]
    skus = list(product.skus.order_by("price_fen"))
    now = timezone.now()
    FlashSpecial.objects.create(
        sku=skus[0], special_price_fen=skus[0].price_fen * 8 // 10, quantity_cap=20, per_buyer_limit=2,
        starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1, minutes=23, seconds=45),
    )  # fmt: skip
    FlashSpecial.objects.create(
        sku=skus[-1], special_price_fen=skus[-1].price_fen - 500, quantity_cap=5, per_buyer_limit=1,
        starts_at=now + timedelta(hours=2), ends_at=now + timedelta(hours=4),
    )  # fmt: skip
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])

    page.goto("/")
    card = page.locator(".card", has=page.locator(f'a[href="{product.get_absolute_url()}"]')).first
    clock = card.locator(".flash-running time")
    first = clock.inner_text()
    assert first.startswith("01:23:")
    page.wait_for_function("t => document.querySelector('.flash-running time').textContent !== t", arg=first)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.goto(product.get_absolute_url())
    assert page.locator(".flash-running").get_by_text("Flash special").is_visible()
    assert page.locator(".flash-upcoming").get_by_text("starts in").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    shots = os.environ.get("SHOTS_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        for language in ("zh-hans", "en"):
            page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
            for size, viewport in (("phone", (390, 844)), ("desktop", (1440, 900))):
                page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
                pages = (("home", "/"), ("product", product.get_absolute_url()), ("search", "/search/?q=Steam"))
                for name, url in pages:
                    page.goto(url)
                    page.screenshot(path=f"{shots}/{name}-{language}-{size}.png", full_page=name != "home")
