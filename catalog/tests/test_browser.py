"""The storefront in a real Chromium (Playwright), at phone size."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_home_in_chinese_then_english(page, demo_shop):
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("heading", name="热门推荐").is_visible()
    assert page.get_by_text("Steam 钱包充值卡").first.is_visible()

    with page.expect_navigation():
        page.select_option("#language-select", "en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Featured").is_visible()
    assert page.get_by_text("Steam Wallet card").first.is_visible()


def test_search_to_product_page_fits_a_phone(page, demo_shop):
    page.goto("/")
    page.get_by_role("searchbox").fill("绿钻")
    page.get_by_role("button", name="搜索").click()
    page.get_by_text("QQ音乐豪华绿钻").click()
    page.wait_for_url("**/p/qq-music-vip/")
    assert page.get_by_text("12个月").is_visible()
    # Mobile first: nothing is wider than the phone's screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
