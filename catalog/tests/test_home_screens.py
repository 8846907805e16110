"""The home page in a real Chromium, at phone (390×844) and desktop (1440×900) size, in Chinese and
English: with a trade template's carousel and sections over the demo catalogue, the demo shop with
no section (the defaults) and a fresh shop with nothing for sale. Each must answer 200, fit the
phone's width and raise no script error; the carousel's dots follow a swipe and turn the slides.
Screenshots in test-artifacts/home/ for people to look at.

/media/ is not served by the test server (production: the front proxy), so the slides' pictures are
answered from MEDIA_ROOT by a Playwright route."""

from __future__ import annotations

import mimetypes
from pathlib import Path

import pytest
from django.conf import settings

from catalog import tasks, trade_templates
from catalog.models import Sku
from catalog.tests.test_storefront import sell
from kameng.testing.fixtures import ARTIFACTS
from orders.tests.conftest import media_root  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
SHOTS = ARTIFACTS / "home"


def _serve_media(route) -> None:
    name = route.request.url.split("/media/", 1)[1].split("?", 1)[0]
    path = Path(settings.MEDIA_ROOT) / name
    if not path.is_file():
        route.fulfill(status=404, body="")
        return
    route.fulfill(status=200, body=path.read_bytes(), content_type=mimetypes.guess_type(path.name)[0] or "")


def shoot(browser, live_server, *, label: str, languages, sizes) -> list[str]:
    problems: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    for language in languages:
        for size in sizes:
            width, height = SIZES[size]
            context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
            context.route("**/media/**", _serve_media)
            context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
            tab = context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            tab.on(
                "response",
                lambda response, errors=errors: (
                    errors.append(f"{response.status} {response.url}") if response.status >= 400 else None
                ),
            )
            response = tab.goto("/")
            where = f"{label} {language} {size}"
            if response is None or response.status != 200:
                problems.append(f"{where}: status {response.status if response else None}")
            tab.wait_for_load_state("networkidle")
            if size == "phone" and tab.evaluate("document.documentElement.scrollWidth") > width:
                problems.append(f"{where}: wider than the phone")
            problems.extend(f"{where}: {error}" for error in errors)
            tab.screenshot(path=str(SHOTS / f"{label}-{language}-{size}.png"), full_page=True)
            context.close()
    return problems


def test_home_with_a_carousel_and_sections(browser, live_server, demo_shop, media_root):  # noqa: F811
    trade_templates.apply("mixed")
    sell(Sku.objects.get(product__slug="iqiyi-vip", label="30天"), 5)
    sell(Sku.objects.get(product__slug="steam-wallet", label="50元"), 3)
    tasks.roll_up_sales()
    problems = shoot(browser, live_server, label="sections", languages=["zh-hans", "en"], sizes=["phone", "desktop"])
    assert problems == []


def test_the_carousel_swipes_and_its_dots_follow(browser, live_server, demo_shop, media_root):  # noqa: F811
    trade_templates.apply("mixed")
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url, has_touch=True)
    context.route("**/media/**", _serve_media)
    tab = context.new_page()
    tab.goto("/")
    dots = tab.locator(".carousel-dot")
    assert dots.count() == 3
    assert dots.nth(0).get_attribute("aria-current") == "true"
    # Every picture loaded (re-encoded JPEGs at the phone's size).
    assert tab.evaluate("[...document.querySelectorAll('.carousel img')].every(i => i.complete)")
    tab.evaluate(
        "() => { const t = document.querySelector('.carousel-track'); t.style.scrollBehavior = 'auto';"
        " t.scrollLeft = t.clientWidth * 2; }"
    )
    tab.wait_for_function("document.querySelectorAll('.carousel-dot')[2].getAttribute('aria-current') === 'true'")
    dots.nth(1).click()
    tab.wait_for_function("document.querySelectorAll('.carousel-dot')[1].getAttribute('aria-current') === 'true'")
    tab.wait_for_function(
        "Math.abs(document.querySelector('.carousel-track').scrollLeft"
        " - document.querySelector('.carousel-track').clientWidth) < 30"
    )
    context.close()


def test_home_of_the_demo_shop_without_sections(browser, live_server, demo_shop):
    sell(Sku.objects.get(product__slug="iqiyi-vip", label="30天"), 5)
    tasks.roll_up_sales()
    problems = shoot(browser, live_server, label="defaults", languages=["zh-hans", "en"], sizes=["phone", "desktop"])
    assert problems == []


def test_home_of_a_fresh_shop(browser, live_server, db):
    problems = shoot(browser, live_server, label="fresh", languages=["zh-hans", "en"], sizes=["phone", "desktop"])
    assert problems == []


def test_an_operator_applies_a_trade_template_in_admin(browser, live_server, db, operator, password, media_root):  # noqa: F811
    from accounts.tests.test_wallet_browser import sign_in

    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    context.route("**/media/**", _serve_media)
    sign_in(context, live_server, operator, password)
    context.add_cookies([{"name": "django_language", "value": "zh-hans", "url": live_server.url}])
    tab = context.new_page()
    tab.goto("/admin/catalog/homesection/")
    tab.get_by_role("link", name="应用行业模板").click()
    tab.get_by_label("游戏卡盟").check()
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / "admin-template-zh-hans-desktop.png"), full_page=True)
    tab.get_by_role("button", name="应用模板").click()
    assert "已添加" in tab.locator(".messagelist").inner_text()
    tab.screenshot(path=str(SHOTS / "admin-template-applied-zh-hans-desktop.png"), full_page=True)
    tab.goto("/admin/catalog/homeslide/")
    tab.screenshot(path=str(SHOTS / "admin-slides-zh-hans-desktop.png"), full_page=True)
    tab.goto("/")
    assert tab.locator(".categories").get_by_text("游戏点卡").is_visible()
    tab.locator(".categories").get_by_text("游戏点卡").click()
    tab.wait_for_url("**/c/game-cards/")
    assert tab.get_by_text("手游充值").first.is_visible()  # the subcategories of the template
    context.close()
