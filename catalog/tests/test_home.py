"""The home page (catalog/home.py): carousel slides and their windows, sections in order with their
limits, best sellers from the rollup task, the cached page data and what drops it, a constant
query count, trade templates and the back office's access rules."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from catalog import allocation, home, tasks, trade_templates
from catalog.models import CardCode, Category, HomeSection, HomeSlide, Product, ProductSalesRollup, Sku
from catalog.signals import send_stock_changed
from catalog.tests.test_storefront import add_products, sell

pytestmark = pytest.mark.django_db


def slide(title: str, **fields) -> HomeSlide:
    picture = home.placeholder_slide(title=title)
    made = HomeSlide(title=title, title_en=f"{title} EN", link_url="/c/game-cards/", **fields)
    made.image.save(picture.large.name, picture.large, save=False)
    made.image_small.save(picture.small.name, picture.small, save=False)
    made.save()
    return made


def section_titles(html: str) -> list[str]:
    import re

    return re.findall(r'<section class="home-section[^"]*">\s*<h2>([^<]+)</h2>', html)


def png(width: int, height: int, colour=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


# -- slides ---------------------------------------------------------------------------------------------------


def test_slides_show_inside_their_window_only(client, demo_shop):
    now = timezone.now()
    slide("当前活动")
    slide("已结束", starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    slide("未开始", starts_at=now + timedelta(days=1))
    slide("已隐藏", enabled=False)
    slide("窗口内", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1))
    html = client.get("/").content.decode()
    assert 'class="carousel"' in html and "carousel.js" in html
    assert "当前活动" in html and "窗口内" in html
    for hidden in ("已结束", "未开始", "已隐藏"):
        assert hidden not in html
    # The cached list is filtered by the clock at every read: a slide leaves when its window ends
    # and a scheduled one enters, whatever the cache holds.
    cached = home.page_data()["slides"]
    later = now + timedelta(hours=2)
    assert [s.title for s in home.running_slides(cached, now=later)] == ["当前活动"]
    sooner = now + timedelta(days=1, minutes=1)
    assert "未开始" in [s.title for s in home.running_slides(cached, now=sooner)]


def test_slide_titles_follow_the_language_and_no_slide_no_carousel(client, demo_shop):
    assert 'class="carousel"' not in client.get("/").content.decode()
    slide("春节特惠")
    client.cookies["django_language"] = "en"
    html = client.get("/").content.decode()
    assert "春节特惠 EN" in html and 'href="/c/game-cards/"' in html


def test_slide_link_must_be_a_shop_path_or_http(demo_shop):
    from django.core.exceptions import ValidationError

    for bad in ("javascript:alert(1)", "//evil.example/", "data:text/html,hi"):
        with pytest.raises(ValidationError):
            HomeSlide(title="x", link_url=bad).full_clean(exclude=["image"])
    HomeSlide(title="x", link_url="/c/game-cards/").full_clean(exclude=["image"])


# -- sections -------------------------------------------------------------------------------------------------


def test_a_fresh_shop_shows_best_sellers_and_new_arrivals(client, demo_shop):
    sell(Sku.objects.get(product__slug="iqiyi-vip", label="30天"), 3)
    tasks.roll_up_sales()
    html = client.get("/").content.decode()
    assert section_titles(html) == ["热门推荐", "畅销榜", "新品上架"]  # featured: the demo marks some
    Product.objects.update(is_featured=False)
    home.forget()  # a bulk update sends no signal
    assert section_titles(client.get("/").content.decode()) == ["畅销榜", "新品上架"]


def test_a_shop_without_products_says_so(client, db):
    html = client.get("/").content.decode()
    assert "暂无在售商品" in html
    assert section_titles(html) == []


def test_sections_in_their_order_with_their_limits_and_empty_ones_hidden(client, demo_shop):
    cards = demo_shop.categories["game-cards"]
    HomeSection.objects.create(kind="new_arrivals", title="新品", limit=2, sort_order=30)
    HomeSection.objects.create(kind="category", title="点卡专区", category=cards, limit=3, sort_order=10)
    HomeSection.objects.create(kind="best_sellers", title="热卖", sort_order=20)  # no sales yet: hidden
    HomeSection.objects.create(kind="new_arrivals", title="关闭的", enabled=False, sort_order=5)
    featured = HomeSection.objects.create(kind="featured", title="精选", sort_order=40)
    wanted = [Sku.objects.filter(product__slug=slug).first() for slug in ("office-key", "steam-wallet")]
    featured.skus.set(wanted)
    html = client.get("/").content.decode()
    assert section_titles(html) == ["点卡专区", "新品", "精选"]
    data = home.page_data()
    by_title = {section.title: section for section in data["sections"]}
    assert len(by_title["新品"].products) == 2
    assert len(by_title["点卡专区"].products) <= 3
    assert {p.category_id for p in by_title["点卡专区"].products} == {cards.pk}
    newest = list(Product.objects.listed().order_by("-created_at", "-id").values_list("pk", flat=True)[:2])
    assert [p.pk for p in by_title["新品"].products] == newest
    assert {p.slug for p in by_title["精选"].products} == {"office-key", "steam-wallet"}


def test_a_category_block_includes_subcategories_and_ranks_by_sales(client, demo_shop):
    parent = demo_shop.categories["game-cards"]
    child = Category.objects.create(parent=parent, name="手游", name_en="Mobile", slug="mobile-x")
    Product.objects.filter(slug="honor-of-kings").update(category=child)
    sell(Sku.objects.filter(product__slug="honor-of-kings").first(), 4)
    tasks.roll_up_sales()
    HomeSection.objects.create(kind="category", title="游戏", category=parent, limit=4)
    products = home.page_data()["sections"][0].products
    assert products[0].slug == "honor-of-kings" and products[0].sold_30d == 4


def test_best_sellers_come_from_the_rollup_after_the_task_runs(client, demo_shop):
    HomeSection.objects.create(kind="best_sellers", title="热卖", limit=2)
    HomeSection.objects.create(kind="new_arrivals", title="新品")
    sell(Sku.objects.get(product__slug="iqiyi-vip", label="30天"), 5)
    sell(Sku.objects.get(product__slug="python-course", label="标准版"), 2)
    sell(Sku.objects.filter(product__slug="honor-of-kings").first(), 1)
    assert "热卖" not in section_titles(client.get("/").content.decode())  # no rollup yet: no per-view aggregation
    assert tasks.roll_up_sales() == 3
    assert ProductSalesRollup.objects.get(product__slug="iqiyi-vip").sold_30d == 5
    html = client.get("/").content.decode()
    assert section_titles(html)[0] == "热卖"
    best = home.page_data()["sections"][0].products
    assert [p.slug for p in best] == ["iqiyi-vip", "python-course"]  # the limit: 2
    # Sales leave the window: the next run drops the rows.
    CardCode.objects.filter(status=CardCode.Status.SOLD).update(sold_at=timezone.now() - timedelta(days=31))
    assert tasks.roll_up_sales() == 0
    assert not ProductSalesRollup.objects.exists()
    assert "热卖" not in section_titles(client.get("/").content.decode())


def test_the_rollup_task_is_scheduled():
    from django.conf import settings

    entries = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    assert "catalog.tasks.roll_up_sales" in entries


# -- queries and cache ----------------------------------------------------------------------------------------


def _sections(demo_shop) -> None:
    HomeSection.objects.create(kind="featured", title="精选", sort_order=1)
    HomeSection.objects.create(kind="category", title="点卡", category=demo_shop.categories["game-cards"], sort_order=2)
    HomeSection.objects.create(kind="best_sellers", title="热卖", sort_order=3)
    HomeSection.objects.create(kind="new_arrivals", title="新品", sort_order=4)


def test_query_count_is_constant_with_sections_and_many_products(client, demo_shop, django_assert_num_queries):
    _sections(demo_shop)
    slide("活动")
    add_products(demo_shop, 2)
    tasks.roll_up_sales()
    client.get("/")  # fills the caches (home data, campaigns, promotions' snapshot)
    with django_assert_num_queries(1):  # the running flash specials of the products shown
        assert client.get("/").status_code == 200
    add_products(demo_shop, 40, start=2)
    tasks.roll_up_sales()
    client.get("/")
    with django_assert_num_queries(1):
        html = client.get("/").content.decode()
    assert section_titles(html) == ["精选", "点卡", "热卖", "新品"]
    # A cache miss costs the same whatever the catalogue: categories, slides, sections (+ their
    # SKUs) and one query per section.
    home.forget()
    with django_assert_num_queries(4 + 4 + 1):
        client.get("/")


def test_a_price_change_and_a_sell_out_show_on_the_next_view(client, demo_shop, django_capture_on_commit_callbacks):
    client.get("/")
    sku = Sku.objects.get(product__slug="iqiyi-vip", label="30天")
    sku.price_fen = 1234
    sku.save()  # as admin saves it
    html = client.get("/").content.decode()
    assert "¥12.34" in html
    # Every code of the product is sold: delivery sends stock_changed after the commit.
    product = demo_shop.products["iqiyi-vip"]
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        ids = list(CardCode.objects.filter(sku__product=product, status="available").values_list("pk", flat=True))
        allocation.sell(code_ids=ids, now=timezone.now())
        send_stock_changed(sku_ids=[s.pk for s in product.skus.all()])
    html = client.get("/").content.decode()
    card = html[html.index("爱奇艺黄金会员") :][:600]
    assert "售罄" in card


def test_saving_a_section_or_slide_shows_at_once(client, demo_shop):
    client.get("/")
    made = HomeSection.objects.create(kind="new_arrivals", title="最新上架")
    assert "最新上架" in client.get("/").content.decode()
    made.title = "本周新品"
    made.save()
    assert "本周新品" in client.get("/").content.decode()
    shown = slide("新年")
    assert "新年" in client.get("/").content.decode()
    shown.delete()
    assert "新年" not in client.get("/").content.decode()


# -- trade templates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(trade_templates.TEMPLATES))
def test_each_template_makes_a_working_category_tree(client, db, name):
    applied = trade_templates.apply(name)
    assert applied.categories >= 1 and applied.sections >= 2 and applied.slides >= 1
    template = trade_templates.TEMPLATES[name]
    html = client.get("/").content.decode()
    for node in template.tree:
        assert node.name in html  # in the navigation
        assert client.get(f"/c/{node.slug}/").status_code == 200
        for child in node.children:
            category = Category.objects.get(slug=child.slug)
            assert category.parent.slug == node.slug and category.name_en == child.name_en
            assert child.name in client.get(f"/c/{node.slug}/").content.decode()
            assert client.get(f"/c/{child.slug}/").status_code == 200
    client.cookies["django_language"] = "en"
    assert template.tree[0].name_en in client.get("/").content.decode()
    assert 'class="carousel"' in html


def test_templates_are_idempotent_and_keep_what_exists(demo_shop):
    cards = demo_shop.categories["game-cards"]
    cards.name = "我的点卡"
    cards.save()
    before_products = Product.objects.count()
    first = trade_templates.apply("mixed")
    counts = (Category.objects.count(), HomeSection.objects.count(), HomeSlide.objects.count())
    again = trade_templates.apply("mixed")
    assert not again.anything
    assert (Category.objects.count(), HomeSection.objects.count(), HomeSlide.objects.count()) == counts
    assert first.categories > 0
    cards.refresh_from_db()
    assert cards.name == "我的点卡"  # existing categories are never changed
    assert Category.objects.get(slug="mobile-games").parent == cards
    assert Product.objects.count() == before_products
    trade_templates.apply("game_cards")  # a second template adds only what is missing
    assert HomeSection.objects.filter(kind="category", category=cards).count() == 1


def test_the_command_applies_a_template(db, capsys):
    call_command("apply_trade_template", "software_keys", "--no-slides")
    assert Category.objects.filter(slug="office-keys", parent__slug="software").exists()
    assert not HomeSlide.objects.exists()
    assert "software_keys" in capsys.readouterr().out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("apply_trade_template", "nope")


# -- back office ----------------------------------------------------------------------------------------------


ADMIN_PAGES = [
    "/admin/catalog/homeslide/",
    "/admin/catalog/homeslide/add/",
    "/admin/catalog/homesection/",
    "/admin/catalog/homesection/add/",
    "/admin/catalog/homesection/template/",
]


def test_operators_manage_the_home_page(client, operator, demo_shop):
    client.force_login(operator)
    for url in ADMIN_PAGES:
        assert client.get(url).status_code == 200, url
    response = client.post("/admin/catalog/homesection/template/", {"template": "game_cards", "slides": "1"})
    assert response.status_code == 302
    assert HomeSection.objects.exists() and HomeSlide.objects.exists()
    made = HomeSlide.objects.first()
    assert client.get(f"/admin/catalog/homeslide/{made.pk}/change/").status_code == 200


def test_merchants_and_guests_are_refused(client, merchant_staff, demo_shop):
    made = slide("活动")
    section = HomeSection.objects.create(kind="new_arrivals", title="新品")
    urls = [
        *ADMIN_PAGES,
        f"/admin/catalog/homeslide/{made.pk}/change/",
        f"/admin/catalog/homesection/{section.pk}/change/",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
    assert client.post("/admin/catalog/homesection/template/", {"template": "mixed"}).status_code == 302
    client.force_login(merchant_staff)
    for url in urls:
        assert client.get(url).status_code == 403, url
    assert client.post("/admin/catalog/homesection/template/", {"template": "mixed"}).status_code == 403
    assert client.post("/admin/catalog/homesection/add/", {"kind": "new_arrivals", "title": "x"}).status_code == 403
    assert not Category.objects.filter(slug="mobile-games").exists()
    assert HomeSection.objects.count() == 1
    assert "homeslide" not in client.get("/admin/").content.decode()


def test_a_slide_upload_is_sniffed_and_re_encoded(client, operator, demo_shop):
    client.force_login(operator)
    url = reverse("admin:catalog_homeslide_add")
    fields = {"title": "新品", "link_url": "/c/software/", "sort_order": 1, "enabled": "on"}
    fake = SimpleUploadedFile("slide.png", b"<svg onload=alert(1)>", content_type="image/png")
    response = client.post(url, {**fields, "image": fake})
    assert response.status_code == 200 and not HomeSlide.objects.exists()
    small = SimpleUploadedFile("tiny.png", png(100, 50), content_type="image/png")
    assert client.post(url, {**fields, "image": small}).status_code == 200
    good = SimpleUploadedFile("big.png", png(1600, 900), content_type="image/png")
    assert client.post(url, {**fields, "image": good}).status_code == 302
    made = HomeSlide.objects.get()
    with made.image.open("rb") as stored, Image.open(stored) as image:
        assert (image.format, image.size) == ("JPEG", home.SLIDE_SIZE)
    with made.image_small.open("rb") as stored, Image.open(stored) as image:
        assert image.size == home.SLIDE_SMALL_SIZE
    assert made.image.url in client.get("/").content.decode()
