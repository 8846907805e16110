"""The coupon wallet as a shopper sees it, in a real Chromium at phone (390×844) and desktop
(1440×900) size, in Chinese and English: the product page's coupon strip (claim, claimed, all
claimed), claiming with a tap, /me/coupons/ (usable, used, expired, and empty for a new user), its
card on /me/ and the checkout's wallet picker. Each page answers 200, fits the phone's width and
raises no script error; screenshots are kept in test-artifacts/wallet/ for people to look at."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from accounts.tests.test_wallet_browser import sign_in
from kameng.testing.fixtures import ARTIFACTS
from marketing import wallet
from marketing.models import Coupon
from orders.tests.conftest import make_sku, place

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
SHOTS = ARTIFACTS / "wallet"


def coupons(demo_shop, user) -> None:
    product = demo_shop.products["steam-wallet"]
    make_sku(product, codes_count=5, label="截图", price_fen=10_000)
    week = timezone.now() + timedelta(days=7)
    Coupon.objects.create(code="ALL5", name="全场立减", amount_fen=500, min_spend_fen=5_000, claimable=True,
                          claim_limit=1_000, ends_at=week)  # fmt: skip
    Coupon.objects.create(code="STEAM15", name="Steam 专享", kind="percent", percent=15, max_discount_fen=1_000,
                          scope="product", product=product, claimable=True, funded_by="merchant",
                          merchant=demo_shop.merchant)  # fmt: skip
    Coupon.objects.create(code="GONE", name="已抢光", amount_fen=2_000, claimable=True, claim_limit=0)
    held = Coupon.objects.create(code="WELCOME", name="新人体验券", amount_fen=300, holders_only=True,
                                 grant_valid_days=7)  # fmt: skip
    used = Coupon.objects.create(code="USED8", name="已用的券", amount_fen=800, holders_only=True)
    old = Coupon.objects.create(code="OLD", name="过期的券", amount_fen=1_000, holders_only=True,
                                ends_at=timezone.now() + timedelta(minutes=10))  # fmt: skip
    for coupon, source in ((held, "trial"), (used, "winback"), (old, "operator")):
        wallet.grant(coupon, user, source=source)
    sku = product.skus.get(label="截图")
    place(sku, buyer=user, email=user.email, coupon_code="USED8")
    Coupon.objects.filter(pk=old.pk).update(ends_at=timezone.now() - timedelta(minutes=1))


def test_wallet_pages_at_phone_and_desktop_in_both_languages(browser, live_server, demo_shop, user, password):
    coupons(demo_shop, user)
    newcomer = User.objects.create_user(email="new@example.com", password=password)
    product_url = demo_shop.products["steam-wallet"].get_absolute_url()
    pages = [
        ("product", product_url), ("wallet", "/me/coupons/"), ("wallet-used", "/me/coupons/?tab=used"),
        ("wallet-expired", "/me/coupons/?tab=expired"), ("me", "/me/"),
    ]  # fmt: skip
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for who, label in ((user, "shopper"), (newcomer, "new")):
        for language in ("zh-hans", "en"):
            for size, (width, height) in SIZES.items():
                context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
                sign_in(context, live_server, who, password)
                context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
                tab = context.new_page()
                errors: list[str] = []
                tab.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                for name, url in pages if who == user else pages[:2]:
                    response = tab.goto(url)
                    where = f"{label} {language} {size} {url}"
                    if response is None or response.status != 200:
                        problems.append(f"{where}: status {response.status if response else None}")
                    if size == "phone" and tab.evaluate("document.documentElement.scrollWidth") > width:
                        problems.append(f"{where}: wider than the phone")
                    problems.extend(f"{where}: {error}" for error in errors)
                    errors.clear()
                    tab.screenshot(path=str(SHOTS / f"{label}-{name}-{language}-{size}.png"), full_page=True)
                if who == user:
                    # The checkout with the wallet's picker: the cart holds one ¥100 card.
                    tab.goto(product_url)
                    tab.locator("label.denomination", has_text="截图").click()
                    tab.get_by_role("button", name="加入购物车" if language == "zh-hans" else "Add to cart").click()
                    tab.goto("/orders/checkout/")
                    assert tab.locator("#wallet-picker .coupon-ticket").count() == 1
                    tab.screenshot(path=str(SHOTS / f"{label}-checkout-{language}-{size}.png"), full_page=True)
                context.close()
    assert problems == []


def test_a_shopper_claims_on_the_product_page_and_uses_it_at_checkout(page, live_server, demo_shop, user, password):
    coupons(demo_shop, user)
    sign_in(page.context, live_server, user, password)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(demo_shop.products["steam-wallet"].get_absolute_url())
    ticket = page.locator(".coupon-strip .coupon-ticket", has_text="¥5.00 off")
    ticket.get_by_role("button", name="Claim").click()
    page.wait_for_load_state()
    assert "Coupon claimed" in page.content()
    assert ticket.locator("[data-claim=claimed]").count() == 1
    page.locator("label.denomination", has_text="截图").click()
    page.get_by_role("button", name="Add to cart").click()
    page.goto("/orders/checkout/")
    page.locator("#wallet-picker .coupon-ticket", has_text="¥5.00 off").get_by_role("button", name="Use").click()
    page.wait_for_load_state()
    assert "Coupon applied: ¥5.00 off." in page.content()
    page.screenshot(path=str(SHOTS / "claimed-and-applied-en-phone.png"), full_page=True)
