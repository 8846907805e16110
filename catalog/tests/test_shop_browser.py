"""Shop settings in a real Chromium: an operator changes the name, logo, theme colour and announcement in
admin and the storefront shows them; the header holds at 390 px (signed in, English, a long name); and
screenshots of the shop's own pages at phone and desktop size, in Chinese and English, are kept in
test-artifacts/shop/ for people to look at."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from PIL import Image, ImageDraw

from accounts.tests.test_wallet_browser import sign_in
from catalog.models import ShopSettings
from kameng.testing.fixtures import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = ARTIFACTS / "shop"
SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
LONG_NAME = "星辰游戏点卡充值自动发货官方旗舰商城"
LONG_NAME_EN = "Star Games Digital Cards Flagship Store"


@pytest.fixture(autouse=True)
def serve_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ROOT_URLCONF = "catalog.tests.shop_urls"


@pytest.fixture(autouse=True)
def default_pages(transactional_db):
    """The footer pages the data migration makes (a transactional test's flush removed them)."""
    from importlib import import_module

    from django.apps import apps

    import_module("catalog.migrations.0010_shop_default_pages").create(apps, None)


def logo_file(tmp_path):
    image = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 390, 390), fill=(123, 63, 228, 255))
    draw.rectangle((140, 120, 260, 280), fill=(255, 255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    path = tmp_path / "star-logo.png"
    path.write_bytes(out.getvalue())
    return path


def operator_context(browser, live_server, operator, password, *, size="phone", language="zh-hans"):
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    sign_in(context, live_server, operator, password)
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    return context


def test_an_operator_changes_the_shop_in_admin_and_the_storefront_shows_it(
    browser, live_server, demo_shop, operator, password, tmp_path
):
    context = operator_context(browser, live_server, operator, password, size="desktop")
    tab = context.new_page()
    tab.goto("/")  # the storefront as it was, cached
    assert tab.locator(".brand-name").inner_text() == "卡盟"

    tab.goto("/admin/")
    tab.get_by_role("link", name="开店检查清单 →").click()
    assert tab.locator('#setup-checklist li[data-key="logo"]').get_attribute("class") == "is-missing"
    tab.locator('#setup-checklist li[data-key="logo"] a').click()  # "fix it" opens the settings
    tab.fill("#id_name", "星辰游戏")
    tab.fill("#id_name_en", "Star Games")
    tab.set_input_files("#id_logo", str(logo_file(tmp_path)))
    tab.select_option("#id_theme", "purple")
    tab.fill("#id_announcement", "双十二全场九折，满百再减十元")
    tab.fill("#id_announcement_en", "12.12: 10% off everything")
    tab.fill("#id_icp_number", "京ICP备12345678号-1")
    tab.fill("#id_service_qq", "800123456")
    tab.locator('input[name="_save"]').click()
    assert tab.locator(".errornote").count() == 0

    shopper = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    store = shopper.new_page()
    store.goto("/")
    assert store.locator(".brand-name").inner_text() == "星辰游戏"
    logo = store.locator("img.brand-logo")
    assert logo.evaluate("img => img.complete && img.naturalWidth > 0")
    header = store.locator(".site-header").evaluate("el => getComputedStyle(el).backgroundColor")
    assert header == "rgb(123, 63, 228)"
    assert "双十二全场九折" in store.locator(".notice-bar").inner_text()
    assert "京ICP备12345678号-1" in store.locator(".filings").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    store.screenshot(path=str(SHOTS / "after-admin-change-zh-hans-phone.png"))
    store.locator(".notice-close button").click()  # dismissed by this visitor, no script needed
    assert store.locator(".notice-bar").count() == 0
    assert store.locator(".brand-name").inner_text() == "星辰游戏"
    manifest = store.evaluate("fetch('/manifest.webmanifest').then(r => r.json())")
    assert manifest["name"] == "星辰游戏" and manifest["theme_color"] == "#7b3fe4"
    icon = store.evaluate(
        "src => new Promise(ok => { const i = new Image(); i.onload = () => ok(i.naturalWidth); i.src = src; })",
        manifest["icons"][1]["src"],
    )
    assert icon == 512

    tab.goto("/admin/setup/")
    assert tab.locator('#setup-checklist li[data-key="logo"]').get_attribute("class") == "is-done"
    assert tab.locator('#setup-checklist li[data-key="icp"]').get_attribute("class") == "is-done"
    shopper.close()
    context.close()


def test_the_header_holds_on_a_phone_signed_in_in_english_with_a_long_name(
    browser, live_server, demo_shop, user, password
):
    ShopSettings.objects.create(name=LONG_NAME, name_en=LONG_NAME_EN, announcement="公告" * 40)
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    sign_in(context, live_server, user, password)  # English
    tab = context.new_page()
    for url in ("/", "/pages/about/", "/help/contact/"):
        tab.goto(url)
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390, url
        sign_out = tab.get_by_role("button", name="Sign out").bounding_box()
        assert sign_out is not None and sign_out["x"] + sign_out["width"] <= 390
        brand = tab.locator(".brand").bounding_box()
        assert brand["x"] + brand["width"] <= sign_out["x"]  # the name gives way, not the links
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / "long-name-signed-in-en-phone.png"))
    context.close()


PAGES = [
    ("home", "/", 200),
    ("page-refunds", "/pages/refunds/", 200),
    ("contact", "/help/contact/", 200),
    ("404", "/no/such/page/", 404),
    ("429", "/test-429/", 429),
    ("500", "/test-500/", 500),
]


def test_screenshots_of_the_shops_pages(browser, live_server, demo_shop, operator, password, tmp_path):
    client = Client()
    client.force_login(operator)
    ShopSettings.objects.create(
        name="星辰游戏", name_en="Star Games", theme="blue", announcement="双十二全场九折，满百再减十元",
        announcement_en="12.12: 10% off everything", announcement_url="/search/?q=steam", service_qq="800123456",
        service_wechat_id="star-kf", service_telegram="star_games", service_email="help@star.example",
        service_hours="每天 9:00–23:00", service_hours_en="Daily 9:00–23:00", icp_number="京ICP备12345678号-1",
        police_number="京公网安备11010502000001号",
    )  # fmt: skip
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for language in ("zh-hans", "en"):
        for size, (width, height) in SIZES.items():
            context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
            context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
            tab = context.new_page()
            tab.on("pageerror", lambda exc: problems.append(str(exc)))
            for name, url, status in PAGES:
                response = tab.goto(url)
                if response.status != status:
                    problems.append(f"{url} {language} {size}: {response.status}")
                if size == "phone" and tab.evaluate("document.documentElement.scrollWidth") > width:
                    problems.append(f"{url} {language} {size}: wider than the phone")
                tab.screenshot(path=str(SHOTS / f"{name}-{language}-{size}.png"), full_page=name != "home")
                if name == "home":
                    tab.evaluate("window.scrollTo(0, document.body.scrollHeight)")
                    tab.screenshot(path=str(SHOTS / f"footer-{language}-{size}.png"))
            context.close()
            admin = operator_context(browser, live_server, operator, password, size=size, language=language)
            tab = admin.new_page()
            assert tab.goto("/admin/setup/").status == 200
            tab.screenshot(path=str(SHOTS / f"checklist-{language}-{size}.png"), full_page=True)
            admin.close()
    assert problems == []
