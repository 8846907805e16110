"""Issue 13's proof at phone size: a user favourites a product, buys it, sees their points and level
change on /me/, and finds it in their favourites and themselves on the spending leaderboard
(recomputed after the payment, not at the next beat)."""

from __future__ import annotations

import re

import pytest

from accounts.models import MemberLevel
from accounts.tests.test_wallet_browser import sign_in
from catalog.models import Favourite, Sku
from orders.models import Order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_favourite_buy_then_see_points_level_and_the_leaderboard(page, live_server, demo_shop, user, password):
    MemberLevel.objects.create(name="普通会员", name_en="Member", threshold_fen=0)
    MemberLevel.objects.create(name="白银会员", name_en="Silver", threshold_fen=5_000)
    sign_in(page.context, live_server, user, password)
    page.goto("/me/")
    card = page.locator(".me-card", has_text="Points and level")
    assert card.locator(".level-badge").inner_text() != "Silver"
    assert re.search(r"\b0\s*points", card.inner_text())
    page.goto("/me/leaderboard/")
    assert page.get_by_text("You have no purchases in this period yet.").is_visible()

    page.goto("/p/steam-wallet/")
    heart = page.locator(".product-head form[data-fav] button")
    heart.click()
    page.wait_for_function("el => el.getAttribute('aria-pressed') === 'true'", arg=heart.element_handle())
    assert Favourite.objects.filter(user=user, product__slug="steam-wallet").exists()

    sku = Sku.objects.get(product__slug="steam-wallet", label="100元")
    page.locator(f'input[name="sku"][value="{sku.pk}"]').check()
    page.get_by_role("button", name="Buy now").click()
    page.wait_for_url("**/orders/checkout/")
    page.get_by_label("Sandbox (test payments)").check()
    page.get_by_role("button", name="Place order and pay ¥96.50").click()
    page.wait_for_url("**/payments/sandbox/**")
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url(re.compile(r"/orders/K\d+/$"))
    assert Order.objects.get(buyer=user).status == Order.Status.DELIVERED

    page.goto("/me/")
    card = page.locator(".me-card", has_text="Points and level")
    assert card.locator(".level-badge").inner_text() == "Silver"  # ¥96.50 paid crosses ¥50
    assert re.search(r"\b96\s*points", card.inner_text())  # 1 point a yuan, rounded down

    page.goto("/me/leaderboard/")
    assert page.get_by_text("Your rank: #1").is_visible()
    assert page.get_by_text("You spent ¥96.50").is_visible()
    row = page.locator(".board-row.is-me")
    assert row.locator(".board-name").inner_text().startswith("小*")
    assert row.locator(".board-spent").inner_text() == "¥96.50"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.goto("/me/favourites/")
    assert page.locator("[data-fav-row]").count() == 1
    assert page.get_by_text("Steam Wallet card").is_visible()
