from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Merchant
from catalog import codes, services, tasks
from catalog.demo import seed_demo
from catalog.models import CardCode, Category, Product, Sku, Tag

pytestmark = pytest.mark.django_db


def add_products(shop, count: int, *, start: int = 0) -> None:
    """``count`` more listed products with three SKUs and a few codes each, some of them sold."""
    category = shop.categories["game-cards"]
    for n in range(start, start + count):
        product = Product.objects.create(
            merchant=shop.merchant, category=category, title=f"扩展商品 {n}", slug=f"extra-{n}",
            status=Product.Status.LISTED, is_featured=n % 2 == 0,
        )  # fmt: skip
        product.tags.set([Tag.objects.get(slug="hot")])
        skus = Sku.objects.bulk_create(Sku(product=product, label=f"{p}元", price_fen=p * 100) for p in (10, 20, 50))
        for sku in skus:
            services.add_codes(sku=sku, secrets=[codes.Secret(f"X{n}-{sku.label}-{i}") for i in range(3)])
        sell(skus[0], 1)


def sell(sku: Sku, count: int) -> None:
    """Mark codes sold the way delivery will (the orders issue owns the real path)."""
    ids = list(sku.codes.filter(status=CardCode.Status.AVAILABLE).values_list("pk", flat=True)[:count])
    CardCode.objects.filter(pk__in=ids).update(status=CardCode.Status.SOLD, sold_at=timezone.now(), times_sold=1)


def count_queries(client, url: str) -> int:
    """The queries of a page in the steady state: a first request fills the caches it reads (the
    promotions' snapshot, marketing/offers.py, one query a minute at most)."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


# The fifth query of each: marketing's flash specials of the products shown (issue 14). The category
# page adds two for tags (the filter chips and the chips of the cards), the product page one.
@pytest.mark.parametrize(
    ("url", "limit"), [("/", 5), ("/c/game-cards/", 7), ("/c/game-cards/?tag=hot", 7), ("/search/?q=商品", 5),
                  ("/p/extra-0/", 6), ("/tags/hot/", 6)],
)  # fmt: skip
def test_query_count_does_not_grow_with_the_catalog(client, demo_shop, url, limit):
    add_products(demo_shop, 1)
    before = count_queries(client, url)
    add_products(demo_shop, 40, start=1)  # more than a page of results, 120 more SKUs with codes
    assert count_queries(client, url) == before
    assert before <= limit


def test_home_lists_listed_products_with_their_lowest_price(client, demo_shop):
    html = client.get("/").content.decode()
    assert "Steam 钱包充值卡" in html
    assert "¥48.50" in html  # lowest of 48.50 / 96.50 / 192.00
    for category in ("游戏点卡", "影音会员", "软件激活码", "课程兑换码"):
        assert category in html


def test_drafts_delisted_and_suspended_merchants_are_hidden(client, demo_shop):
    Product.objects.filter(slug="steam-wallet").update(status=Product.Status.DRAFT)
    Product.objects.filter(slug="iqiyi-vip").update(status=Product.Status.DELISTED)
    html = client.get("/").content.decode()
    assert "Steam 钱包充值卡" not in html
    assert "爱奇艺黄金会员" not in html
    assert client.get("/p/steam-wallet/").status_code == 404

    for merchant in Merchant.objects.all():  # saved (as admin does): the home page's cache is dropped
        merchant.status = Merchant.Status.SUSPENDED
        merchant.save()
    assert "网易一卡通点卡" not in client.get("/").content.decode()


def test_product_without_active_skus_is_not_listed(client, demo_shop):
    Sku.objects.filter(product__slug="office-key").update(is_active=False)
    assert "Office 家庭与学生版激活码" not in client.get("/").content.decode()


def test_product_page_shows_denominations_in_order(client, demo_shop):
    html = client.get("/p/qq-music-vip/").content.decode()
    assert html.index("1个月") < html.index("3个月") < html.index("12个月")
    assert "¥13.80" in html and "¥148.00" in html
    assert "卡盟示例商户" in html


def test_category_page_and_unknown_category(client, demo_shop):
    html = client.get("/c/memberships/").content.decode()
    assert "QQ音乐豪华绿钻" in html and "Steam 钱包充值卡" not in html
    assert client.get("/c/nope/").status_code == 404


def test_search_matches_chinese_and_english_titles(client, demo_shop):
    assert "Steam 钱包充值卡" in client.get("/search/?q=steam").content.decode()
    assert "QQ音乐豪华绿钻" in client.get("/search/?q=绿钻").content.decode()
    empty = client.get("/search/?q=不存在的商品").content.decode()
    assert "没有找到相关商品" in empty


def test_seed_demo_is_idempotent(db):
    seed_demo()
    counts = (Category.objects.count(), Product.objects.count(), Sku.objects.count(), Merchant.objects.count())
    Sku.objects.filter(label="50元", product__slug="steam-wallet").update(price_fen=1)
    seed_demo()
    assert (Category.objects.count(), Product.objects.count(), Sku.objects.count(), Merchant.objects.count()) == counts
    assert Sku.objects.get(label="50元", product__slug="steam-wallet").price_fen == 4850  # demo state restored


def test_database_refuses_a_free_or_negative_price(demo_shop):
    from django.db import IntegrityError, transaction

    product = demo_shop.products["steam-wallet"]
    with pytest.raises(IntegrityError), transaction.atomic():
        Sku.objects.create(product=product, label="0元", price_fen=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Sku.objects.create(product=product, label="负成本", price_fen=100, cost_fen=-1)


def test_product_page_shows_stock_levels(client, demo_shop):
    # Demo stock: iQIYI 30天 has 30 codes, 90天 only 3 (threshold 10).
    html = client.get("/p/iqiyi-vip/").content.decode()
    assert "有货" in html and "仅剩少量" in html
    assert "30 left" not in html  # exact counts are the merchant's choice

    Product.objects.filter(slug="iqiyi-vip").update(show_stock_count=True)
    client.cookies["django_language"] = "en"
    html = client.get("/p/iqiyi-vip/").content.decode()
    assert "30 left" in html and "3 left" in html


def test_a_big_stock_is_counted_up_to_the_cap(client, demo_shop, monkeypatch):
    from catalog import selectors

    sku = Sku.objects.get(product__slug="iqiyi-vip", label="30天")  # 30 codes in the demo
    Product.objects.filter(slug="iqiyi-vip").update(show_stock_count=True)
    client.cookies["django_language"] = "en"
    monkeypatch.setattr(selectors, "STOCK_COUNT_CAP", 30)  # a page reads at most this many codes of a SKU
    html = client.get("/p/iqiyi-vip/").content.decode()
    assert "30+ left" in html and "3 left" in html
    sku.codes.filter(status="available").first().delete()
    assert "29 left" in client.get("/p/iqiyi-vip/").content.decode()


def test_sold_out_denomination_is_disabled_and_product_flagged(client, demo_shop):
    html = client.get("/p/office-key/").content.decode()  # its only SKU has no codes
    assert "售罄" in html
    assert 'value="' in html and "disabled" in html
    assert "售罄" in client.get("/c/software/").content.decode()


def test_expired_reservations_count_as_stock(client, demo_shop):
    sku = Sku.objects.get(product__slug="iqiyi-vip", label="90天")
    CardCode.objects.filter(sku=sku).update(
        status=CardCode.Status.RESERVED, reserved_until=timezone.now() + timedelta(minutes=10)
    )
    assert "售罄" in client.get("/p/iqiyi-vip/").content.decode()
    CardCode.objects.filter(sku=sku).update(reserved_until=timezone.now() - timedelta(seconds=1))
    assert "售罄" not in client.get("/p/iqiyi-vip/").content.decode()


def test_manual_products_are_never_sold_out(client, demo_shop):
    Product.objects.filter(slug="office-key").update(delivery_mode=Product.DeliveryMode.MANUAL)
    html = client.get("/p/office-key/").content.decode()
    assert "售罄" not in html and "人工" in html


def test_best_sellers_are_ranked_by_recent_sales(client, demo_shop):
    assert "畅销" not in client.get("/").content.decode()  # no sales yet: section hidden
    sell(Sku.objects.get(product__slug="iqiyi-vip", label="30天"), 5)
    sell(Sku.objects.get(product__slug="office-key", label="永久授权"), 0)
    sell(Sku.objects.get(product__slug="python-course", label="标准版"), 2)
    old = Sku.objects.get(product__slug="steam-wallet", label="50元")
    sell(old, 9)
    old.codes.filter(status=CardCode.Status.SOLD).update(sold_at=timezone.now() - timedelta(days=31))
    tasks.roll_up_sales()  # the beat task behind the best sellers (catalog/home.py)
    html = client.get("/").content.decode()
    section = html[html.index("畅销") : html.index("新品上架")]
    assert section.index("爱奇艺黄金会员") < section.index("Python 入门课程兑换码")
    assert "Steam 钱包充值卡" not in section  # its sales are older than 30 days


def test_subcategories_show_their_products_under_the_parent(client, demo_shop):
    parent = demo_shop.categories["game-cards"]
    child = Category.objects.create(parent=parent, name="手游点券", name_en="Mobile games", slug="mobile-games")
    Product.objects.filter(slug="honor-of-kings").update(category=child)
    html = client.get("/c/game-cards/").content.decode()
    assert "手游点券" in html and "王者荣耀点券" in html
    child_html = client.get("/c/mobile-games/").content.decode()
    assert "王者荣耀点券" in child_html and "Steam 钱包充值卡" not in child_html
    Category.objects.filter(pk=child.pk).update(is_active=False)
    assert client.get("/c/mobile-games/").status_code == 404
