"""The issue's proof of marketing, end to end in a real Chromium: an operator creates a claimable coupon
and a campaign that offers it, both in admin and nothing else; a signed-in shopper opens the campaign
page from the home banner, claims the coupon into the wallet, buys the featured SKU, picks the coupon
from the wallet at checkout and sees both the campaign's special price and the coupon in the breakdown;
the order stores the same parts and its total is what the page said."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.test_wallet_browser import sign_in
from catalog.models import Sku
from marketing.models import Campaign, Coupon, CouponGrant
from marketing.tests.test_campaigns_browser import banner_file
from orders.models import Order
from orders.tests.conftest import media_root  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def admin_sign_in(page, operator, password, next_url: str) -> None:
    page.goto(f"/admin/login/?next={next_url}")
    page.locator("#id_username").fill(operator.email)
    page.locator("#id_password").fill(password)
    page.locator("input[type=submit]").click()
    page.wait_for_url(f"**{next_url}")


def fill_datetime(page, field: str, when) -> None:
    page.locator(f"#id_{field}_0").fill(when.strftime("%Y-%m-%d"))
    page.locator(f"#id_{field}_1").fill(when.strftime("%H:%M:%S"))


def test_operator_creates_coupon_and_campaign_shopper_claims_and_sees_the_discount(
    browser,
    live_server,
    demo_shop,
    operator,
    user,
    password,
    tmp_path,
    media_root,  # noqa: F811
):
    sku = Sku.objects.get(product__slug="steam-wallet", label="100元")  # list price ¥96.50
    now = timezone.localtime()

    # -- the operator: a coupon, then a campaign offering it --------------------------------------------
    desk = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    desk.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page = desk.new_page()
    page.set_default_timeout(10_000)
    admin_sign_in(page, operator, password, "/admin/marketing/coupon/add/")
    page.locator("#id_code").fill("FEST8")
    page.locator("#id_name").fill("节日立减券")
    page.locator("#id_amount_fen").fill("800")
    page.locator("#id_min_spend_fen").fill("5000")
    fill_datetime(page, "ends_at", now + timedelta(days=5))
    page.locator("#id_claimable").check()
    page.locator("#id_claim_limit").fill("100")
    page.locator("#id_holders_only").check()
    page.locator("input[name=_save]").click()
    page.wait_for_url("**/admin/marketing/coupon/")
    assert page.locator(".messagelist .success").is_visible()
    coupon = Coupon.objects.get(code="FEST8")
    assert (coupon.amount_fen, coupon.claimable, coupon.holders_only) == (800, True, True)

    page.goto("/admin/marketing/campaign/add/")
    page.locator("#id_title").fill("双十二狂欢")
    page.locator("#id_title_en").fill("Double Twelve")
    fill_datetime(page, "starts_at", now - timedelta(minutes=5))
    fill_datetime(page, "ends_at", now + timedelta(days=2))
    page.locator("#id_slug").fill("double-twelve")
    page.locator("#id_banner").set_input_files(str(banner_file(tmp_path)))
    page.locator("#id_coupon").fill(str(coupon.pk))
    page.locator("#id_rules").fill("领券后下单立减。")
    page.locator("#id_items-0-sku").fill(str(sku.pk))
    page.locator("#id_items-0-special_price_fen").fill("9000")
    page.locator("input[name=_save]").click()
    page.wait_for_url("**/admin/marketing/campaign/")
    assert page.locator("td.field-status").inner_text() == "Running"
    desk.close()

    # -- the shopper, signed in on a phone ----------------------------------------------------------------
    phone = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    phone.set_default_timeout(10_000)
    sign_in(phone, live_server, user, password)
    page = phone.new_page()
    page.goto("/")
    page.locator(".campaign-slot").click()
    page.wait_for_url("**/promotions/campaigns/double-twelve/")
    assert page.locator(".campaign-coupon-code").count() == 0  # holders only: the code is not shown
    page.locator(".campaign-coupon [data-claim=claim]").click()
    page.wait_for_url("**/promotions/campaigns/double-twelve/")
    assert page.locator(".campaign-coupon [data-claim=claimed]").is_visible()
    assert CouponGrant.objects.filter(coupon=coupon, user=user).count() == 1

    page.locator(f'.campaign-card[data-sku="{sku.pk}"]').get_by_role("button", name="Buy now").click()
    page.wait_for_url("**/orders/checkout/")
    assert page.get_by_text("Flash special ¥90.00 × 1").is_visible()
    page.locator(f'#wallet-picker [data-coupon="{coupon.pk}"]').get_by_role("button", name="Use").click()
    page.wait_for_url("**/orders/checkout/**")
    assert page.locator("#coupon-applied").inner_text() == "Coupon applied: ¥8.00 off."
    assert page.get_by_text("Coupon FEST8").is_visible()
    page.get_by_role("button", name="Place order and pay ¥82.00").click()
    page.wait_for_url("**/payments/sandbox/**")
    phone.close()

    order = Order.objects.get(buyer=user)
    assert (order.total_fen, order.discount_fen) == (8200, 9650 - 8200)
    rules = [part["rule"] for part in order.pricing["adjustments"]]
    assert "flash_special" in rules and "coupon" in rules
    assert CouponGrant.objects.get(coupon=coupon, user=user).order_id == order.pk
    assert Campaign.objects.get(slug="double-twelve").items.get().special.sold == 1
