"""A new buyer sees the 满减 tiers, the first-order discount and quantity tiers on the product page,
buys five and finds each in the checkout's breakdown — on a phone and a desktop, in Chinese and
English. ``KAMENG_SCREENSHOTS=DIR`` saves the pages into DIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from accounts.tests.test_wallet_browser import sign_in
from catalog.models import Sku
from marketing.models import FirstOrderOffer, QuantityTier, SpendTier, SpendTierPromotion

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
TEXTS = {
    "zh-hans": ["满100减10 · 满200减25", "首单立减 ¥8", "买5件起 ¥46/件", "满200减25", "首单优惠"],
    "en": ["Spend ¥100, ¥10 off · Spend ¥200, ¥25 off", "¥8 off your first order", "Buy 5+: ¥46 each",
           "Spend ¥200, ¥25 off", "First-order discount"],
}  # fmt: skip


def test_offers_on_the_product_page_and_in_the_checkout(browser, live_server, demo_shop, user, password):
    promotion = SpendTierPromotion.objects.create(
        name="店铺满减", scope="merchant", merchant=demo_shop.merchant, funded_by="merchant"
    )
    SpendTier.objects.create(promotion=promotion, threshold_fen=10_000, discount_fen=1_000)
    SpendTier.objects.create(promotion=promotion, threshold_fen=20_000, discount_fen=2_500)
    FirstOrderOffer.objects.create(name="新客立减", kind="fixed", amount_fen=800, funded_by="platform")
    fifty = Sku.objects.get(product=demo_shop.products["steam-wallet"], label="50元")  # ¥48.50
    QuantityTier.objects.create(sku=fifty, min_quantity=5, unit_price_fen=4_600)
    shots = os.environ.get("KAMENG_SCREENSHOTS")
    for language, texts in TEXTS.items():
        for size, (width, height) in SIZES.items():
            context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
            sign_in(context, live_server, user, password)
            context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
            tab = context.new_page()
            tab.goto("/p/steam-wallet/")
            offers = tab.locator("ul.offers")
            assert texts[0] in offers.inner_text() and texts[1] in offers.inner_text()
            assert tab.locator(f'label[data-sku="{fifty.pk}"] .quantity-tiers').inner_text() == texts[2]
            assert tab.evaluate("document.documentElement.scrollWidth") <= width, (size, language)
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=f"{shots}/product-{language}-{size}.png", full_page=True)
            tab.locator(f'label[data-sku="{fifty.pk}"]').click()
            tab.fill("#quantity", "5")
            tab.locator('button[name="buy_now"]').click()
            tab.wait_for_url("**/orders/checkout/")
            breakdown = tab.locator("dl.quote").first.inner_text()
            # ¥242.50 list; ¥230 at ¥46 each; 满200减25 → ¥205; first order −¥8 → ¥197.
            assert texts[3] in breakdown and texts[4] in breakdown and "¥197.00" in breakdown
            assert tab.evaluate("document.documentElement.scrollWidth") <= width, (size, language)
            if shots:
                tab.screenshot(path=f"{shots}/checkout-{language}-{size}.png", full_page=True)
            context.close()


def test_the_running_total_follows_the_price_the_checkout_charges(page, live_server, demo_shop):
    """The product page's running total takes the best unit-price offer for the count, as the engine
    does: a flash special for its units (the rest at list price), or a quantity tier once reached."""
    from datetime import timedelta

    from django.utils import timezone

    from marketing.models import FlashSpecial
    from orders.tests.test_browser import english

    english(page.context, live_server)
    sku = Sku.objects.get(product__slug="steam-wallet", label="100元")  # ¥96.50
    now = timezone.now()
    FlashSpecial.objects.create(
        sku=sku, special_price_fen=9_000, quantity_cap=50, per_buyer_limit=2, funded_by="merchant",
        starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=2),
    )  # fmt: skip
    QuantityTier.objects.create(sku=sku, min_quantity=5, unit_price_fen=9_100)
    page.goto("/p/steam-wallet/")
    page.locator(f'input[name="sku"][value="{sku.pk}"]').check()
    total, note = page.locator("#running-total"), page.locator("#running-total-note")
    assert (total.inner_text(), note.inner_text()) == ("¥90.00", "¥90.00 × 1")
    page.locator("#quantity").fill("3")
    assert (total.inner_text(), note.inner_text()) == ("¥276.50", "¥90.00 × 2 + ¥96.50 × 1")
    page.locator("#quantity").fill("5")
    assert (total.inner_text(), note.inner_text()) == ("¥455.00", "¥91.00 × 5")
    page.get_by_role("button", name="Buy now").click()
    page.wait_for_url("**/orders/checkout/")
    assert page.get_by_role("button", name="Place order and pay ¥455.00").is_visible()
