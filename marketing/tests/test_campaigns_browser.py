"""In the browser: an operator composes a campaign in admin (banner upload, one featured SKU), a shopper
on a phone opens it from the home page's banner and checks the SKU out at the special price (the
breakdown says so). Screenshots of the campaign page, the home page with its banner and the ended
page, at 390×844 and 1440×900, in Chinese and English, land in test-artifacts/campaign/."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from catalog.models import Sku
from marketing.models import Campaign, Coupon
from orders.models import Order
from orders.tests.conftest import image_bytes, media_root  # noqa: F401  (media_root: a fixture)
from orders.tests.test_browser_loyalty import fits_a_phone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "campaign"
SIZES = {"phone": (390, 844), "desktop": (1440, 900)}


def banner_file(tmp_path) -> Path:
    """A banner a designer might send: 1800 × 700, bands of colour (to see the 3:1 crop)."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1800, 700), (228, 57, 60))
    draw = ImageDraw.Draw(image)
    for i, colour in enumerate([(250, 140, 22), (255, 197, 61), (250, 84, 28)]):
        draw.ellipse((200 + i * 500, 100, 600 + i * 500, 600), fill=colour)
    out = io.BytesIO()
    image.save(out, format="PNG")
    path = tmp_path / "spring-banner.png"
    path.write_bytes(out.getvalue())
    assert image_bytes  # the shared helper stays importable for the other tests
    return path


def shoot(page, name: str, *, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = page.url
    root = "/".join(url.split("/")[:3])
    for language in ("zh-hans", "en"):
        page.context.add_cookies([{"name": "django_language", "value": language, "url": root}])
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(url)
            page.screenshot(path=str(SHOTS / f"{name}-{language}-{size}.png"), full_page=full_page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": root}])


def test_an_operator_composes_a_campaign_and_a_shopper_buys_its_deal(
    browser,
    live_server,
    demo_shop,
    operator,
    password,
    tmp_path,
    media_root,  # noqa: F811
):
    sku = Sku.objects.get(product__slug="steam-wallet", label="100元")  # ¥96.50
    Coupon.objects.create(
        code="SPRING5", name="春季满减券", amount_fen=500, min_spend_fen=5000,
        ends_at=timezone.now() + timedelta(days=7),
    )  # fmt: skip
    coupon = Coupon.objects.get(code="SPRING5")

    # -- the operator, on a desktop --------------------------------------------------------------------------
    admin = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    admin.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page = admin.new_page()
    page.set_default_timeout(10_000)
    page.goto("/admin/login/?next=/admin/marketing/campaign/add/")
    page.locator("#id_username").fill(operator.email)
    page.locator("#id_password").fill(password)
    page.locator("input[type=submit]").click()
    page.wait_for_url("**/admin/marketing/campaign/add/")
    now = timezone.localtime()
    start, end = now - timedelta(minutes=10), now + timedelta(days=3, hours=5)
    page.locator("#id_title").fill("春季狂欢节")
    page.locator("#id_title_en").fill("Spring Festival Sale")
    page.locator("#id_starts_at_0").fill(start.strftime("%Y-%m-%d"))
    page.locator("#id_starts_at_1").fill(start.strftime("%H:%M:%S"))
    page.locator("#id_ends_at_0").fill(end.strftime("%Y-%m-%d"))
    page.locator("#id_ends_at_1").fill(end.strftime("%H:%M:%S"))
    page.locator("#id_slug").fill("spring-festival")  # after the English title, which prepopulates it
    page.locator("#id_banner").set_input_files(str(banner_file(tmp_path)))
    page.locator("#id_coupon").fill(str(coupon.pk))
    page.locator("#id_rules").fill("1. 活动期间每人限购 2 件。\n2. 特价商品不与其他限时特价同享。")
    page.locator("#id_rules_en").fill("1. At most 2 units per buyer during the sale.\n2. One special price per item.")
    page.locator("#id_items-0-sku").fill(str(sku.pk))
    page.locator("#id_items-0-special_price_fen").fill("8000")
    page.locator("#id_items-0-per_buyer_limit").fill("2")
    page.locator("input[name=_save]").click()
    page.wait_for_url("**/admin/marketing/campaign/")
    assert page.locator(".messagelist .success").is_visible()
    assert (
        page.get_by_role("link", name="Preview").first.get_attribute("href") == "/promotions/campaigns/spring-festival/"
    )
    assert page.locator("td.field-status").inner_text() == "Running"
    admin.close()
    campaign = Campaign.objects.get(slug="spring-festival")
    assert campaign.items.get().special.special_price_fen == 8000

    # -- the shopper, on a phone -----------------------------------------------------------------------------
    shopper = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    shopper.set_default_timeout(10_000)
    shopper.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page = shopper.new_page()
    page.goto("/")
    banner = page.locator(".campaign-slot")
    assert banner.inner_text() == "Spring Festival Sale"
    assert page.locator(".campaign-slot img").evaluate("img => img.complete && img.naturalWidth") == 720  # phone size
    fits_a_phone(page)
    shoot(page, "home-with-banner", full_page=False)
    page.locator(".campaign-slot").click()
    page.wait_for_url("**/promotions/campaigns/spring-festival/")
    card = page.locator(f'.campaign-card[data-sku="{sku.pk}"]')
    assert card.locator(".campaign-price").inner_text() == "¥80.00"
    assert card.locator(".list-price").inner_text() == "¥96.50"
    assert page.locator(".campaign-coupon-code").inner_text() == "SPRING5"
    assert (
        page.locator(".campaign-clock time").inner_text().startswith("3d 04:5")
    )  # 3 days 5 hours, less the seconds spent
    assert (
        page.locator('meta[property="og:image"]')
        .get_attribute("content")
        .endswith(f"/promotions/campaigns/spring-festival/share.png?v={Campaign.objects.get().share_key[:8]}")
    )
    fits_a_phone(page)
    shoot(page, "campaign-running")

    card.get_by_role("button", name="Buy now").click()
    page.wait_for_url("**/orders/checkout/")
    assert page.get_by_text("Flash special ¥80.00 × 1").is_visible()
    page.locator("#id_email").fill("campaign-buyer@example.com")
    page.get_by_role("button", name="Place order and pay ¥80.00").click()
    page.wait_for_url("**/payments/sandbox/**")
    order = Order.objects.get(email="campaign-buyer@example.com")
    assert (order.total_fen, order.discount_fen) == (8000, 1650)

    # -- later: the campaign has ended ------------------------------------------------------------------------
    campaign.refresh_from_db()
    campaign.starts_at, campaign.ends_at = now - timedelta(days=2), now - timedelta(minutes=1)
    campaign.save()
    page.goto("/")
    assert page.locator(".campaign-slot").count() == 0
    response = page.goto("/promotions/campaigns/spring-festival/")
    assert response.status == 410
    assert page.get_by_role("heading", name="This campaign has ended").is_visible()
    fits_a_phone(page)
    shoot(page, "campaign-ended")
    shopper.close()


def test_screens_of_a_scheduled_campaign_and_a_sold_out_deal(page, live_server, demo_shop, media_root):  # noqa: F811
    from marketing import campaigns
    from marketing.models import CampaignItem, FlashSpecial
    from marketing.tests.test_campaigns import upload

    skus = list(Sku.objects.filter(product__slug="steam-wallet").order_by("price_fen"))
    now = timezone.now()
    for slug, starts, ends in (("soon", 2, 30), ("now", -1, 5)):
        processed = campaigns.process_banner(upload(image_bytes("PNG", (1500, 500))), stem=slug)
        campaign = Campaign(
            title=f"{slug} 会员日", title_en=f"Members' day ({slug})", slug=slug, rules="每人限购一件。",
            starts_at=now + timedelta(hours=starts), ends_at=now + timedelta(hours=ends),
        )  # fmt: skip
        campaign.banner.save(processed.large.name, processed.large, save=False)
        campaign.banner_small.save(processed.small.name, processed.small, save=False)
        campaign.save()
        for sku in skus[:3]:
            CampaignItem.objects.create(
                campaign=campaign, sku=sku, special_price_fen=sku.price_fen * 9 // 10, quantity_cap=3
            )
    FlashSpecial.objects.filter(campaign_item__campaign__slug="now", sku=skus[0]).update(sold=3)
    page.goto("/promotions/campaigns/soon/")
    assert page.locator(".campaign-soon").count() == 3
    fits_a_phone(page)
    shoot(page, "campaign-scheduled")
    page.goto("/promotions/campaigns/now/")
    assert page.locator(".campaign-card-special_sold_out").count() == 1
    fits_a_phone(page)
    shoot(page, "campaign-sold-out-deal")
    page.goto("/")
    assert page.locator(".campaign-slot").count() == 1
    share = page.request.get("/promotions/campaigns/now/share.png")
    assert share.headers["content-type"] == "image/png"
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "share-image.png").write_bytes(share.body())
