"""Campaign pages (marketing/campaigns.py, campaign_views.py, admin/campaigns.py): validation, the flash
specials that price the items (checkout during the window and not after), the page in each state and
its query count, the home page's slot, the banner's processing, the share image, the admin."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from PIL import Image

from marketing import campaigns
from marketing.models import Campaign, CampaignItem, Coupon, FlashSpecial
from orders import pricing
from orders.tests.conftest import image_bytes, make_sku, media_root, place  # noqa: F401  (media_root: a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def english(media_root):  # noqa: F811
    with translation.override("en"):
        yield


@pytest.fixture
def client():
    english = Client()
    english.cookies["django_language"] = "en"
    return english


@pytest.fixture
def sku(demo_shop):
    return make_sku(demo_shop.products["steam-wallet"], codes_count=10, price_fen=1000)


def upload(data: bytes, name: str = "banner.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


def make_campaign(*, slug="spring", starts=-1, ends=2, items=(), **kwargs) -> Campaign:
    """A campaign from ``starts`` to ``ends`` hours from now, with ``items`` = [(sku, price_fen, kwargs)]."""
    now = timezone.now()
    banner = campaigns.process_banner(upload(image_bytes("PNG", (1500, 500))), stem=slug)
    campaign = Campaign(
        title=kwargs.pop("title", "春季大促"), title_en=kwargs.pop("title_en", "Spring sale"), slug=slug,
        starts_at=now + timedelta(hours=starts), ends_at=now + timedelta(hours=ends), **kwargs,
    )  # fmt: skip
    campaign.banner.save(banner.large.name, banner.large, save=False)
    campaign.banner_small.save(banner.small.name, banner.small, save=False)
    campaign.save()
    for item_sku, price, extra in items:
        CampaignItem.objects.create(campaign=campaign, sku=item_sku, special_price_fen=price, **extra)
    return campaign


# -- validation --------------------------------------------------------------------------------------------


def test_the_window_must_end_after_it_starts():
    now = timezone.now()
    campaign = Campaign(title="t", slug="t", starts_at=now, ends_at=now)
    with pytest.raises(ValidationError) as error:
        campaign.clean()
    assert "ends_at" in error.value.message_dict


def test_an_item_is_priced_below_the_list_price_and_not_below_cost(sku):
    sku.cost_fen = 700
    sku.save()
    campaign = make_campaign()
    for price, message in ((1000, "below the SKU's price"), (650, "not be below the SKU's cost (700 fen)")):
        item = CampaignItem(campaign=campaign, sku=sku, special_price_fen=price)
        with pytest.raises(ValidationError) as error:
            item.clean()
        assert message in error.value.message_dict["special_price_fen"][0]
    CampaignItem(campaign=campaign, sku=sku, special_price_fen=700).clean()  # at cost: fine


def test_the_engine_caps_a_price_below_cost_that_bypassed_validation(sku):
    sku.cost_fen = 700
    sku.save()
    make_campaign(items=[(sku, 500, {})])  # created directly, no clean(): the engine's floor still holds
    quote = pricing.quote(lines=[(sku, 1)], buyer=None)
    assert quote.total_fen == 700
    [adjustment] = [a for a in quote.adjustments if a.rule == "flash_special"]
    assert (adjustment.amount_fen, adjustment.capped_fen, adjustment.capped_by) == (300, 200, "cost_floor")


# -- the flash specials that price the items --------------------------------------------------------------


def test_each_item_keeps_a_flash_special_in_step_with_the_campaign(sku, demo_shop):
    other = make_sku(demo_shop.products["steam-wallet"], codes_count=2, label="other", price_fen=2000)
    campaign = make_campaign(items=[(sku, 800, {"quantity_cap": 5, "per_buyer_limit": 2}), (other, 1500, {})])
    first, second = campaign.items.order_by("pk")
    special = FlashSpecial.objects.get(pk=first.special_id)
    assert (special.sku_id, special.special_price_fen, special.quantity_cap, special.per_buyer_limit) == (
        sku.pk, 800, 5, 2,
    )  # fmt: skip
    assert (special.starts_at, special.ends_at, special.active) == (campaign.starts_at, campaign.ends_at, True)
    assert FlashSpecial.objects.get(pk=second.special_id).quantity_cap == campaigns.NO_LIMIT

    campaign.ends_at += timedelta(days=1)
    campaign.enabled = False
    campaign.save()
    special.refresh_from_db()
    assert (special.ends_at, special.active) == (campaign.ends_at, False)

    first.special_price_fen = 850
    first.save()
    special.refresh_from_db()
    assert special.special_price_fen == 850
    second_special = second.special_id
    second.delete()
    assert FlashSpecial.objects.get(pk=second_special).active is False  # kept for its redemptions


def test_the_special_price_is_charged_at_checkout_during_the_window_and_not_after(sku):
    campaign = make_campaign(items=[(sku, 600, {"per_buyer_limit": 3})])
    order = place(sku, 2).order
    assert order.total_fen == 1200
    assert [line["rule"] for line in order.pricing["adjustments"]] == ["flash_special"]

    campaign.starts_at = timezone.now() - timedelta(hours=3)
    campaign.ends_at = timezone.now() - timedelta(seconds=1)
    campaign.save()
    assert place(sku, 1).order.total_fen == 1000
    assert campaigns.running() == []


def test_a_scheduled_campaign_does_not_price_yet(sku):
    make_campaign(starts=1, ends=3, items=[(sku, 600, {})])
    assert pricing.quote(lines=[(sku, 1)], buyer=None).total_fen == 1000


# -- the page ----------------------------------------------------------------------------------------------


def test_the_running_page_shows_the_deals_coupon_rules_and_share_tags(sku, settings, client):
    settings.SITE_URL = "https://shop.example.com"
    coupon = Coupon.objects.create(code="SPRING5", name="Spring ¥5", amount_fen=500, min_spend_fen=3000)
    campaign = make_campaign(
        items=[(sku, 600, {"per_buyer_limit": 2})], coupon=coupon, rules_en="1. One <b>each</b>\n2. Bye"
    )
    response = client.get("/promotions/campaigns/spring/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Spring sale" in html and "ends in" in html and "data-countdown" in html
    assert "¥6.00" in html and "¥10.00" in html and "Buy now" in html and "2 per buyer" in html
    assert "SPRING5" in html and "On orders from ¥30.00" in html and "No expiry date" in html
    assert "One &lt;b&gt;each&lt;/b&gt;<br>2. Bye" in html  # plain text, escaped
    campaign.refresh_from_db()
    assert (
        f'<meta property="og:image" content="https://shop.example.com/promotions/campaigns/spring/share.png?v={campaign.share_key[:8]}">'
        in html
    )
    assert '<meta property="og:url" content="https://shop.example.com/promotions/campaigns/spring/">' in html


def test_before_the_window_the_page_says_when_it_starts_and_sells_nothing(sku, client):
    make_campaign(starts=5, ends=8, items=[(sku, 600, {})])
    html = client.get("/promotions/campaigns/spring/").content.decode()
    assert "Starts at" in html and "starts in" in html and "Not started yet" in html
    assert "Buy now" not in html


def test_after_the_window_the_page_is_gone_and_points_to_running_ones(sku, client):
    make_campaign(starts=-5, ends=-1, items=[(sku, 600, {})])
    make_campaign(slug="summer", title_en="Summer sale")
    response = client.get("/promotions/campaigns/spring/")
    assert response.status_code == 410
    html = response.content.decode()
    assert "This campaign has ended" in html and "Buy now" not in html and "¥6.00" not in html
    assert "/promotions/campaigns/summer/" in html and "noindex" in html


def test_a_disabled_campaign_is_not_found_except_for_an_operators_preview(sku, operator, password):
    make_campaign(items=[(sku, 600, {})], enabled=False)
    assert Client().get("/promotions/campaigns/spring/").status_code == 404
    assert Client().get("/promotions/campaigns/nope/").status_code == 404
    staff = Client()
    staff.cookies["django_language"] = "en"
    staff.force_login(operator)
    response = staff.get("/promotions/campaigns/spring/")
    assert response.status_code == 200
    assert "Preview: this campaign is disabled" in response.content.decode()


def test_the_sold_out_states(sku, demo_shop, client):
    empty = make_sku(demo_shop.products["steam-wallet"], codes_count=0, label="empty", price_fen=3000)
    campaign = make_campaign(items=[(sku, 600, {"quantity_cap": 1}), (empty, 2000, {})])
    FlashSpecial.objects.filter(pk=campaign.items.get(sku=sku).special_id).update(sold=1)
    html = client.get("/promotions/campaigns/spring/").content.decode()
    assert "campaign-card-special_sold_out" in html and "Sold out at the special price" in html
    assert "campaign-card-sold_out" in html


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code in (200, 410)
    return len(queries)


def test_the_page_costs_the_same_queries_for_one_or_many_items(sku, demo_shop, client, django_assert_num_queries):
    product = demo_shop.products["steam-wallet"]
    make_campaign(items=[(sku, 600, {})])
    extra = [make_sku(product, codes_count=1, label=f"x{i}", price_fen=2000 + i) for i in range(4)]
    make_campaign(slug="many", items=[(sku, 600, {})] + [(s, 1500, {}) for s in extra])
    client.get("/")  # the session, the language
    one = count_queries(client, "/promotions/campaigns/spring/")
    with django_assert_num_queries(one):
        client.get("/promotions/campaigns/many/")
    assert one <= 3  # the campaign with its coupon, the items with SKU, product, category, special and stock


# -- the home page's slot ----------------------------------------------------------------------------------


def test_the_home_page_shows_only_running_campaigns_and_nothing_when_none_runs(sku, client):
    assert "campaign-banners" not in client.get("/").content.decode()
    make_campaign(slug="now", title_en="Running now", priority=1)
    make_campaign(slug="later", title_en="Later", starts=2, ends=4)
    make_campaign(slug="past", title_en="Past", starts=-4, ends=-2)
    make_campaign(slug="off", title_en="Off", enabled=False)
    html = client.get("/").content.decode()
    assert "/promotions/campaigns/now/" in html
    for slug in ("later", "past", "off"):
        assert f"/promotions/campaigns/{slug}/" not in html
    # The cached list is checked against the clock at each read: a campaign leaves as its window ends.
    running = campaigns.running()
    assert [c.slug for c in running] == ["now"]
    assert campaigns.running(now=running[0].ends_at) == []


def test_the_home_slot_costs_no_query_once_cached(sku, client):
    client.get("/")
    without = count_queries(client, "/")
    make_campaign(slug="a")
    make_campaign(slug="b", priority=5)
    client.get("/")  # fills the cache
    assert count_queries(client, "/") == without
    html = client.get("/").content.decode()
    assert html.index("/promotions/campaigns/b/") < html.index("/promotions/campaigns/a/")  # priority first


# -- banner ------------------------------------------------------------------------------------------------


def test_a_banner_is_sniffed_cropped_and_re_encoded(sku):
    with pytest.raises(ValidationError) as error:
        campaigns.process_banner(upload(b"<html>not a picture</html>", "banner.png"))
    assert error.value.code == "not_an_image"
    with pytest.raises(ValidationError) as error:
        campaigns.process_banner(upload(image_bytes("BMP", (900, 300)), "banner.jpg"))
    assert error.value.code == "format"
    with pytest.raises(ValidationError) as error:
        campaigns.process_banner(upload(image_bytes("PNG", (300, 100))))
    assert error.value.code == "too_small"

    banner = campaigns.process_banner(upload(image_bytes("JPEG", (2000, 1000), exif={0x010F: "PhoneMaker"})))
    for content, size in ((banner.large, (1440, 480)), (banner.small, (720, 240))):
        with Image.open(io.BytesIO(content.read())) as image:
            assert (image.format, image.size) == ("JPEG", size)
            assert "exif" not in image.info


# -- share image -------------------------------------------------------------------------------------------


def test_the_share_image_is_drawn_with_a_readable_qr_code_and_redrawn_on_change(sku, settings, client):
    settings.SITE_URL = "https://shop.example.com"
    campaign = make_campaign(items=[(sku, 600, {})])
    campaign.refresh_from_db()
    assert campaign.share_image and campaign.share_key  # drawn after the save (Celery eager)
    response = client.get("/promotions/campaigns/spring/share.png")
    assert response["Content-Type"] == "image/png"
    data = b"".join(response.streaming_content)
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("PNG", campaigns.SHARE_SIZE)
        image = image.convert("L")
        left, top, module, matrix = campaigns.qr_placement(campaign)
        read = [
            [
                image.getpixel((left + x * module + module // 2, top + y * module + module // 2)) < 128
                for x in range(len(row))
            ]
            for y, row in enumerate(matrix)
        ]
    assert read == matrix  # every module of the code of https://shop.example.com/promotions/campaigns/spring/
    first = campaign.share_key
    campaign.title = "夏季大促"
    campaign.save()
    campaign.refresh_from_db()
    assert campaign.share_key != first
    assert campaigns.refresh_share(campaign.pk) is False  # unchanged since: not drawn again


def test_the_share_image_is_made_without_a_cjk_font(sku, settings):
    settings.CAMPAIGN_SHARE_FONTS = ["/nowhere/font.ttc"]
    campaign = make_campaign(items=[(sku, 600, {})])
    assert campaigns.refresh_share(campaign.pk, force=True)
    campaign.refresh_from_db()
    with Image.open(campaign.share_image.path) as image:
        assert image.size == campaigns.SHARE_SIZE


# -- admin -------------------------------------------------------------------------------------------------


def admin_form(sku, **overrides):
    now = timezone.localtime()
    data = {
        "title": "春季大促", "title_en": "Spring sale", "slug": "spring", "enabled": "on", "priority": "0",
        "starts_at_0": (now - timedelta(hours=1)).strftime("%Y-%m-%d"),
        "starts_at_1": (now - timedelta(hours=1)).strftime("%H:%M:%S"),
        "ends_at_0": (now + timedelta(days=2)).strftime("%Y-%m-%d"), "ends_at_1": now.strftime("%H:%M:%S"),
        "coupon": "", "rules": "每人限购", "rules_en": "",
        "items-TOTAL_FORMS": "1", "items-INITIAL_FORMS": "0", "items-MIN_NUM_FORMS": "0", "items-MAX_NUM_FORMS": "1000",
        "items-0-sku": str(sku.pk), "items-0-special_price_fen": "600", "items-0-quantity_cap": "",
        "items-0-per_buyer_limit": "1", "items-0-funded_by": "merchant", "items-0-sort_order": "0",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_an_operator_creates_a_campaign_in_admin_and_a_non_image_is_refused(sku, operator):
    client = Client()
    client.cookies["django_language"] = "en"
    client.force_login(operator)
    refused = client.post(
        "/admin/marketing/campaign/add/", {**admin_form(sku), "banner": upload(b"MZ\x90\x00 not an image", "x.png")}
    )
    assert refused.status_code == 200
    assert "This file is not an image. Upload a JPEG, PNG, WebP or GIF picture." in refused.content.decode()
    assert not Campaign.objects.exists()

    response = client.post(
        "/admin/marketing/campaign/add/", {**admin_form(sku), "banner": upload(image_bytes("PNG", (1600, 900)))}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get()
    with Image.open(campaign.banner.path) as large, Image.open(campaign.banner_small.path) as small:
        assert (large.format, large.size, small.size) == ("JPEG", (1440, 480), (720, 240))
    item = campaign.items.get()
    assert (item.special.special_price_fen, item.special.per_buyer_limit) == (600, 1)
    changelist = client.get("/admin/marketing/campaign/").content.decode()
    assert "Running" in changelist and "/promotions/campaigns/spring/" in changelist


def test_merchant_staff_cannot_see_or_create_campaigns(sku, merchant_staff):
    client = Client()
    client.force_login(merchant_staff)
    assert client.get("/admin/marketing/campaign/").status_code == 403
    assert client.get("/admin/marketing/campaign/add/").status_code == 403
    make_campaign()
    assert client.get(f"/admin/marketing/campaign/{Campaign.objects.get().pk}/change/").status_code == 403


def test_a_campaign_saved_without_a_banner_still_renders(sku, client):
    now = timezone.now()
    Campaign.objects.create(
        title="无图",
        title_en="No picture",
        slug="bare",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
    )
    assert "campaign-slot-blank" in client.get("/").content.decode()
    assert client.get("/promotions/campaigns/bare/").status_code == 200
    assert client.get("/promotions/campaigns/bare/share.png").status_code == 200


def test_a_campaigns_flash_special_is_read_only_in_its_own_admin(sku, operator):
    campaign = make_campaign(items=[(sku, 600, {})])
    special = campaign.items.get().special
    client = Client()
    client.force_login(operator)
    page = client.get(f"/admin/marketing/flashspecial/{special.pk}/change/").content.decode()
    assert 'name="special_price_fen"' not in page  # shown, not editable: the campaign keeps it in step
    other = FlashSpecial.objects.create(
        sku=sku,
        special_price_fen=700,
        quantity_cap=5,
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(hours=1),
    )
    assert (
        'name="special_price_fen"' in client.get(f"/admin/marketing/flashspecial/{other.pk}/change/").content.decode()
    )
