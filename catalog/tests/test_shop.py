"""Shop settings (catalog/shop.py): changed in admin, shown on the next storefront page; the cached
snapshot; footer pages and their sanitising; contacts and filings; the manifest; the error pages; the
operators' setup checklist."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import User
from catalog import codes, services, shop
from catalog.models import FooterPage, Product, ShopSettings, Sku

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def picture(size=(600, 300), colour=(20, 120, 220), kind="PNG", name="logo.png") -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=kind)
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/png")


def admin_form(**changes) -> dict:
    data = {
        "name": "", "name_en": "", "tagline": "", "tagline_en": "", "theme": "red", "custom_colour": "#000000",
        "announcement": "", "announcement_en": "", "announcement_url": "", "announcement_starts_at_0": "",
        "announcement_starts_at_1": "", "announcement_ends_at_0": "", "announcement_ends_at_1": "",
        "service_qq": "", "service_wechat_id": "", "service_telegram": "", "service_email": "",
        "service_hours": "", "service_hours_en": "", "icp_number": "", "police_number": "",
    }  # fmt: skip
    data.update(changes)
    return data


def settings_url() -> str:
    ShopSettings.objects.get_or_create(pk=1)
    return reverse("admin:catalog_shopsettings_change", args=[1])


# -- defaults --------------------------------------------------------------------------------------------------


def test_a_fresh_shop_has_a_name_footer_pages_and_default_icons(client):
    body = client.get("/").content.decode()
    assert '<span class="brand-name">卡盟</span>' in body
    assert "--brand: #e4393c" in body
    for slug in ("about", "terms", "privacy", "refunds", "faq"):
        assert f'href="/pages/{slug}/"' in body
        assert client.get(f"/pages/{slug}/").status_code == 200
    assert 'rel="manifest" href="/manifest.webmanifest"' in body
    assert "notice-bar" not in body and "beian" not in body  # nothing to announce, no filing yet
    client.cookies["django_language"] = "en"
    body = client.get("/").content.decode()
    assert '<span class="brand-name">Kameng</span>' in body and ">Refund policy</a>" in body


# -- admin → storefront ----------------------------------------------------------------------------------------


def test_settings_changed_in_admin_show_on_the_next_page(client, operator):
    client.get("/")  # the snapshot is cached now
    client.force_login(operator)
    response = client.post(
        settings_url(),
        admin_form(
            name="星辰游戏商城", name_en="Star Games", theme="purple", announcement="双十二全场九折",
            announcement_en="10% off everything", announcement_url="/c/games/", logo=picture(),
            service_qq="800123456", service_email="help@star.example", service_hours="每天 9:00–23:00",
            icp_number="京ICP备12345678号-1", police_number="京公网安备11010502000001号",
        ),
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    row = ShopSettings.objects.get(pk=1)
    assert row.logo.name.endswith(".png") and row.favicon and row.icon_192 and row.icon_512
    with Image.open(row.icon_512.path) as icon:
        assert icon.size == (512, 512)
    with Image.open(row.favicon.path) as favicon:
        assert favicon.size == (64, 64)
    body = Client().get("/").content.decode()
    assert '<span class="brand-name">星辰游戏商城</span>' in body
    assert f'src="{row.logo.url}"' in body and f'href="{row.favicon.url}"' in body
    assert "--brand: #7b3fe4" in body and '<meta name="theme-color" content="#7b3fe4">' in body
    assert '<a href="/c/games/">双十二全场九折</a>' in body
    assert "QQ 800123456" in body and "mailto:help@star.example" in body
    assert 'href="https://beian.miit.gov.cn/"' in body and ">京ICP备12345678号-1</a>" in body
    assert "beian.mps.gov.cn/#/query/webSearch?code=11010502000001" in body
    english = Client()
    english.cookies["django_language"] = "en"
    body = english.get("/").content.decode()
    assert '<span class="brand-name">Star Games</span>' in body and "10% off everything" in body


def test_a_custom_colour_becomes_the_brand_colour(client, operator):
    client.force_login(operator)
    assert client.post(settings_url(), admin_form(theme="custom", custom_colour="#0f9d58")).status_code == 302
    body = Client().get("/").content.decode()
    assert "--brand: #0f9d58" in body and "--brand-dark: #0c7e46" in body


def test_a_colour_that_is_not_a_colour_is_refused(client, operator):
    client.force_login(operator)
    response = client.post(settings_url(), admin_form(theme="custom", custom_colour="red;}body{x"))
    assert response.status_code == 200 and response.context["adminform"].form.errors["custom_colour"]


def test_an_announcement_link_is_a_web_address(client, operator):
    client.force_login(operator)
    for bad in ("javascript:alert(1)", "//evil.example/x", "data:text/html,x"):
        response = client.post(settings_url(), admin_form(announcement="公告", announcement_url=bad))
        assert response.status_code == 200 and response.context["adminform"].form.errors["announcement_url"], bad
    response = client.post(settings_url(), admin_form(announcement="公告", announcement_url="/c/games/"))
    assert response.status_code == 302


def test_a_file_that_is_not_an_image_is_refused_as_logo(client, operator):
    client.force_login(operator)
    fake = SimpleUploadedFile("logo.png", b"<svg onload=alert(1)>", content_type="image/png")
    response = client.post(settings_url(), admin_form(logo=fake))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["logo"]
    assert not ShopSettings.objects.get(pk=1).logo


def test_merchant_staff_do_not_see_the_shop_settings(client, merchant_staff):
    client.force_login(merchant_staff)
    assert client.get(settings_url()).status_code == 403
    assert client.get(reverse("admin:catalog_footerpage_changelist")).status_code == 403


# -- the cache ---------------------------------------------------------------------------------------------------


def test_the_snapshot_is_cached_and_dropped_on_save():
    assert shop.snapshot()["name"] == ""
    assert cache.get(shop.CACHE_KEY) is not None
    ShopSettings.objects.create(name="新名字")
    assert cache.get(shop.CACHE_KEY) is None
    assert shop.snapshot()["name"] == "新名字"
    FooterPage.objects.filter(slug="faq").get().delete()
    assert cache.get(shop.CACHE_KEY) is None
    assert "faq" not in [page["slug"] for page in shop.snapshot()["pages"]]


def home_queries(client) -> list[str]:
    client.get("/")  # warm
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return [query["sql"] for query in queries.captured_queries]


def test_a_warm_home_page_makes_no_query_for_the_settings(client, demo_shop):
    without = home_queries(client)
    ShopSettings.objects.create(name="有设置的店", announcement="公告", service_qq="123", icp_number="ICP")
    with_settings = home_queries(client)
    assert len(with_settings) == len(without)
    assert not [sql for sql in with_settings if "shopsettings" in sql or "footerpage" in sql]
    assert "有设置的店" in client.get("/").content.decode()


# -- the announcement ----------------------------------------------------------------------------------------------


def test_the_announcement_keeps_to_its_window():
    now = timezone.now()
    row = ShopSettings.objects.create(announcement="限时公告", announcement_starts_at=now + timedelta(hours=1))
    assert "限时公告" not in Client().get("/").content.decode()
    row.announcement_starts_at = now - timedelta(hours=1)
    row.announcement_ends_at = now + timedelta(hours=1)
    row.save()
    assert "限时公告" in Client().get("/").content.decode()
    row.announcement_ends_at = now - timedelta(minutes=1)
    row.save()
    assert "限时公告" not in Client().get("/").content.decode()


def test_a_visitor_dismisses_the_announcement_until_it_changes(client):
    row = ShopSettings.objects.create(announcement="第一条公告")
    assert "第一条公告" in client.get("/search/?q=x").content.decode()
    response = client.post(reverse("shop:dismiss_notice"), {"next": "/search/?q=x"})
    assert response.status_code == 302 and response.url == "/search/?q=x"
    assert "第一条公告" not in client.get("/").content.decode()
    assert "第一条公告" in Client().get("/").content.decode()  # another visitor still sees it
    row.announcement = "第二条公告"
    row.save()
    assert "第二条公告" in client.get("/").content.decode()


def test_dismissing_never_redirects_off_site(client):
    ShopSettings.objects.create(announcement="公告")
    assert client.post(reverse("shop:dismiss_notice"), {"next": "https://evil.example/"}).url == "/"
    assert client.get(reverse("shop:dismiss_notice")).status_code == 405


# -- footer pages ---------------------------------------------------------------------------------------------------


def test_footer_pages_are_sanitised_on_save_and_on_render(client):
    page = FooterPage.objects.create(
        slug="rules",
        title="规则",
        body='<h2>规则</h2><p onclick="steal()">好的<script>alert(1)</script></p><a href="javascript:x()">链接</a>',
    )
    page.refresh_from_db()
    assert "<script" not in page.body and "onclick" not in page.body and "javascript:" not in page.body
    assert "<h2>规则</h2>" in page.body and "好的" in page.body
    # A row written around the model (a raw update, an import) is still cleaned when shown.
    FooterPage.objects.filter(pk=page.pk).update(body='<p onclick="x()">正文</p><script>alert(2)</script>')
    body = client.get("/pages/rules/").content.decode()
    assert "<p>正文</p>" in body and "alert(2)" not in body and 'onclick="x()"' not in body


def test_footer_pages_in_english_fall_back_to_chinese(client):
    FooterPage.objects.create(slug="zh-only", title="只有中文", body="<p>中文正文</p>")
    client.cookies["django_language"] = "en"
    body = client.get("/pages/zh-only/").content.decode()
    assert "只有中文" in body and "中文正文" in body
    body = client.get("/pages/about/").content.decode()
    assert "<h1>About us</h1>" in body


def test_unknown_and_unpublished_footer_pages_are_404(client):
    FooterPage.objects.filter(slug="privacy").update(is_published=False)
    cache.clear()
    assert client.get("/pages/no-such-page/").status_code == 404
    response = client.get("/pages/privacy/")
    assert response.status_code == 404
    assert 'href="/pages/privacy/"' not in client.get("/").content.decode()


# -- contact page ----------------------------------------------------------------------------------------------------


def test_the_contact_page_shows_what_is_set(client):
    assert "尚未公布" in client.get("/help/contact/").content.decode()
    ShopSettings.objects.create(
        service_qq="800123456", service_telegram="kameng_help", service_wechat_id="kameng-kf", service_hours="全天"
    )
    body = client.get("/help/contact/").content.decode()
    assert "800123456" in body and "https://t.me/kameng_help" in body and "kameng-kf" in body and "全天" in body


# -- manifest ---------------------------------------------------------------------------------------------------------


def test_the_manifest_is_valid_json_with_icons_and_theme(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200 and response["Content-Type"] == "application/manifest+json"
    data = json.loads(response.content)
    assert data["name"] == "卡盟" and data["start_url"] == "/" and data["display"] == "standalone"
    assert data["theme_color"] == "#e4393c"
    assert {icon["sizes"] for icon in data["icons"]} == {"192x192", "512x512"}
    for icon in data["icons"]:
        assert icon["src"].endswith(".png")
    ShopSettings.objects.create(name="蓝色商店", theme="blue")
    data = json.loads(client.get("/manifest.webmanifest").content)
    assert data["name"] == "蓝色商店" and data["theme_color"] == "#1677ff"


# -- error pages ------------------------------------------------------------------------------------------------------


def test_404_page_is_styled_with_the_shop(client):
    ShopSettings.objects.create(name="错误页商店")
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "错误页商店" in body and "error-page" in body and "页面不存在" in body


def test_403_page(client, merchant_staff):
    client.force_login(merchant_staff)
    response = client.get(reverse("admin:setup"))
    assert response.status_code == 403
    assert "error-page" in response.content.decode()


def test_500_page_renders_without_the_database(django_assert_num_queries):
    from django.views.defaults import server_error

    request = RequestFactory().get("/")
    with django_assert_num_queries(0):
        response = server_error(request)
    assert response.status_code == 500
    body = response.content.decode()
    assert "error-page" in body and "500" in body and "/static/css/kameng.css" in body


def test_too_many_attempts_page(client, settings, sms_outbox):
    settings.SMS_CODE_RATE_LIMITS = "1/m/key,2/h/ip"
    for n in range(3):
        User.objects.create_user(f"u{n}@example.com", "pw", phone=f"+86139000000{n:02d}", phone_verified=True)
    for n in range(2):
        Client().post("/accounts/login/code/", {"phone": f"+86139000000{n:02d}"})
    response = Client().post("/accounts/login/code/", {"phone": "+8613900000002"})
    assert response.status_code == 429
    body = response.content.decode()
    assert "error-page" in body and "尝试次数过多" in body


# -- setup checklist ---------------------------------------------------------------------------------------------------


def checklist(client) -> dict[str, bool]:
    response = client.get(reverse("admin:setup"))
    assert response.status_code == 200
    return {item.key: item.done for item in response.context["items"]}


def test_the_setup_checklist_follows_the_shop(client, operator, settings, merchant_staff):
    client.force_login(operator)
    settings.SITE_URL = "http://127.0.0.1:8000"
    Product.objects.update(status=Product.Status.DRAFT)
    states = checklist(client)
    assert states == {
        "payments": False, "email": False, "site_url": False, "merchant": True, "product": False, "icp": False,
        "logo": False,
    }  # fmt: skip
    settings.SITE_URL = "https://shop.example.com"
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    product = Product.objects.filter(skus__isnull=False).first()
    product.status = Product.Status.LISTED
    product.save()
    sku = Sku.objects.filter(product=product, is_active=True).first()
    services.add_codes(sku=sku, secrets=[codes.Secret("CHECK-0001")])
    client.post(settings_url(), admin_form(icp_number="沪ICP备00000001号", logo=picture()))
    states = checklist(client)
    assert states["site_url"] and states["email"] and states["product"] and states["icp"] and states["logo"]
    body = client.get(reverse("admin:setup")).content.decode()
    assert "ALIPAY_APP_ID" in body  # how to fix what is still missing
    assert reverse("admin:setup") in client.get(reverse("admin:index")).content.decode()


def test_the_setup_checklist_is_for_operators_only(client, merchant_staff):
    anonymous = client.get(reverse("admin:setup"))
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.url
    client.force_login(merchant_staff)
    assert client.get(reverse("admin:setup")).status_code == 403
    assert reverse("admin:setup") not in client.get(reverse("admin:index")).content.decode()
