"""Points and levels in the browser, phone first: a member sees their level price on the product page,
uses points at checkout, pays, and finds the points and the level changed on /me/ and /me/points/ —
every page within 390 px. With ``KAMENG_SHOTS=<dir>`` the pages are also saved there as
screenshots at 390×844 and 1440×900 in Chinese and English (to look at them; nothing is asserted on
the images)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from accounts import points
from accounts.models import LoyaltyAccount, LoyaltySettings, MemberLevel, PointsEntry
from accounts.tests.test_wallet_browser import sign_in
from orders.tests.conftest import pay, place

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}


def shoot(page, name: str) -> None:
    """Save the page at both sizes and in both languages when KAMENG_SHOTS names a directory."""
    folder = os.environ.get("KAMENG_SHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    url = page.url
    root = "/".join(url.split("/")[:3])  # the cookie for the whole site, not only this path
    for language in ("zh-hans", "en"):
        page.context.add_cookies([{"name": "django_language", "value": language, "url": root}])
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(url)
            page.screenshot(path=str(Path(folder) / f"{name}-{size}-{language}.png"), full_page=True)
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": root}])
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url)


def fits_a_phone(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_member_sees_the_level_price_uses_points_and_the_points_and_level_change(
    page, live_server, demo_shop, user, password
):
    config = LoyaltySettings.load()
    config.earn_points_per_yuan, config.redeem_points_per_yuan, config.redeem_max_percent = Decimal("1"), 100, 20
    config.save()
    MemberLevel.objects.create(name="普通会员", name_en="Member", threshold_fen=0, colour="#8c8c8c")
    silver = MemberLevel.objects.create(
        name="白银会员", name_en="Silver", threshold_fen=5000, discount_percent=5, colour="#7d8fa3"
    )
    gold = MemberLevel.objects.create(
        name="黄金会员", name_en="Gold", threshold_fen=12000, discount_percent=10, colour="#c9a227"
    )
    MemberLevel.objects.create(name="钻石会员", name_en="Diamond", threshold_fen=50000, discount_percent=15)
    points.move(user=user, points=1_500, kind=PointsEntry.Kind.ADJUSTMENT, reference="welcome", note="welcome gift")
    product = demo_shop.products["steam-wallet"]
    sku, bigger = product.skus.order_by("price_fen")[:2]
    pay(place(bigger, 1, buyer=user, email=user.email).order)  # an earlier order: Silver
    assert LoyaltyAccount.objects.get(user=user).level == silver
    sign_in(page.context, live_server, user, password)

    page.goto(f"/p/{product.slug}/")
    fits_a_phone(page)
    row = page.locator(f'label.denomination[data-sku="{sku.pk}"]')
    level_price = sku.price_fen - sku.price_fen * 5 // 100
    assert row.locator(".level-price").inner_text().startswith(f"¥{level_price // 100}.{level_price % 100:02d}")
    assert row.locator("s.list-price").inner_text() == f"¥{sku.price_fen // 100}.{sku.price_fen % 100:02d}"
    shoot(page, "product-level-price")

    row.click()
    page.get_by_role("button", name="Buy now").click()
    page.wait_for_url("**/orders/checkout/")
    assert page.locator("#points-earn").is_visible()
    page.get_by_role("button", name="Use points").click()
    assert page.get_by_text("Paying").is_visible()
    fits_a_phone(page)
    shoot(page, "checkout-points")
    page.get_by_label("Sandbox (test payments)").check()
    page.locator("form#checkout button.primary").click()
    page.wait_for_url("**/payments/sandbox/**")
    page.get_by_role("button", name="Pay").first.click()
    page.wait_for_url("**/orders/K*/")

    spent = -PointsEntry.objects.get(kind=PointsEntry.Kind.SPEND).points
    earned = sum(PointsEntry.objects.filter(kind=PointsEntry.Kind.EARN).values_list("points", flat=True))
    assert spent > 0 and earned > 0

    page.goto("/me/")
    fits_a_phone(page)
    assert page.locator("#me-points").inner_text() == str(1_500 - spent + earned)
    assert LoyaltyAccount.objects.get(user=user).level == gold  # this order crossed Gold's threshold
    card = page.locator('[data-card="points"]').inner_text()
    assert "Gold" in card and "more to Diamond" in card
    shoot(page, "me-home")

    page.goto("/me/points/")
    fits_a_phone(page)
    assert page.locator(".points-entries tbody tr").count() == 4
    shoot(page, "me-points")
