"""Favourites and the leaderboard in a real browser at phone size: the heart works without a reload
when JavaScript runs, a guest's click survives signing in, the e-mail switch flips in place, and
the pages fit a 390 px screen and a desktop one.

``KAMENG_SCREENSHOTS=DIR`` also saves each page at 390×844 and 1440×900 in Chinese and English
into DIR (the screenshots of issue 13)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from accounts.tests.test_wallet_browser import sign_in
from catalog import favourites
from catalog.models import Favourite, Product

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}


def test_a_heart_on_a_list_card_toggles_without_a_reload(page, live_server, demo_shop, user, password):
    sign_in(page.context, live_server, user, password)
    page.goto("/c/game-cards/")
    steam = Product.objects.get(slug="steam-wallet")
    heart = page.locator(f'form[data-add="/me/favourites/{steam.pk}/add/"] button')
    assert heart.get_attribute("aria-pressed") == "false"
    page.evaluate("window.__same_page = true")
    heart.click()
    page.wait_for_function("el => el.getAttribute('aria-pressed') === 'true'", arg=heart.element_handle())
    assert page.evaluate("window.__same_page") is True  # no navigation happened
    assert Favourite.objects.filter(user=user, product=steam).exists()
    heart.click()
    page.wait_for_function("el => el.getAttribute('aria-pressed') === 'false'", arg=heart.element_handle())
    assert page.evaluate("window.__same_page") is True
    assert not Favourite.objects.filter(user=user, product=steam).exists()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_guest_signs_in_and_comes_back_with_the_favourite(page, live_server, demo_shop, user, password):
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page.goto("/p/steam-wallet/")
    page.locator(".product-head form[data-fav] button").click()
    page.wait_for_url("**/accounts/login/?next=%2Fp%2Fsteam-wallet%2F")
    page.get_by_label("E-mail or mobile number").fill(user.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/p/steam-wallet/")
    assert page.locator(".product-head form[data-fav] button").get_attribute("aria-pressed") == "true"
    assert page.get_by_text("Added to your favourites.").is_visible()
    assert Favourite.objects.filter(user=user, product__slug="steam-wallet").exists()


def test_the_email_switch_flips_in_place(page, live_server, demo_shop, user, password):
    steam = Product.objects.get(slug="steam-wallet")
    favourites.add(user=user, product_id=steam.pk)
    sign_in(page.context, live_server, user, password)
    page.goto("/me/favourites/")
    switch = page.get_by_role("switch")
    assert switch.get_attribute("aria-checked") == "false"
    page.evaluate("window.__same_page = true")
    switch.click()
    page.wait_for_function("el => el.getAttribute('aria-checked') === 'true'", arg=switch.element_handle())
    assert page.evaluate("window.__same_page") is True
    assert Favourite.objects.get(user=user, product=steam).notify is True
    switch.click()
    page.wait_for_function("el => el.getAttribute('aria-checked') === 'false'", arg=switch.element_handle())
    assert Favourite.objects.get(user=user, product=steam).notify is False


def _pages(user) -> list[tuple[str, str]]:
    return [
        ("favourites-empty", "/me/favourites/"),
        ("favourites", "/me/favourites/"),
        ("product", "/p/steam-wallet/"),
        ("list", "/c/game-cards/"),
        ("home", "/"),
        ("leaderboard", "/me/leaderboard/"),
        ("me", "/me/"),
    ]


def test_pages_fit_phone_and_desktop_in_both_languages(browser, live_server, demo_shop, user, password):
    from accounts.models import User
    from orders.tests.test_leaderboard import order

    shots = os.environ.get("KAMENG_SCREENSHOTS")
    for n, (nickname, spent) in enumerate([("张小三", 128_800), ("", 96_000), ("李四", 45_000), ("王五六", 12_000)]):
        order(User.objects.create_user(email=f"top{n}@qq.com", password=password, nickname=nickname), spent)
    order(user, 30_000)
    for language in ("zh-hans", "en"):
        for size, (width, height) in SIZES.items():
            Favourite.objects.filter(user=user).delete()
            context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
            sign_in(context, live_server, user, password)
            context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
            tab = context.new_page()
            for name, url in _pages(user):
                if name == "favourites":
                    for slug, notify in (("steam-wallet", True), ("office-key", False), ("qq-music-vip", False)):
                        product = Product.objects.get(slug=slug)
                        favourites.add(user=user, product_id=product.pk)
                        favourites.set_notify(user=user, product_id=product.pk, notify=notify)
                    Product.objects.filter(slug="qq-music-vip").update(status=Product.Status.DELISTED)
                tab.goto(url)
                assert tab.evaluate("document.documentElement.scrollWidth") <= width, (name, size, language)
                if shots:
                    Path(shots).mkdir(parents=True, exist_ok=True)
                    tab.screenshot(path=f"{shots}/{name}-{language}-{size}.png", full_page=name != "home")
            Product.objects.filter(slug="qq-music-vip").update(status=Product.Status.LISTED)
            context.close()
