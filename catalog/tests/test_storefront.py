import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Merchant
from catalog.demo import seed_demo
from catalog.models import Category, Product, Sku

pytestmark = pytest.mark.django_db


def add_products(shop, count: int, *, start: int = 0) -> None:
    category = shop.categories["game-cards"]
    for n in range(start, start + count):
        product = Product.objects.create(
            merchant=shop.merchant, category=category, title=f"扩展商品 {n}", slug=f"extra-{n}",
            status=Product.Status.LISTED, is_featured=n % 2 == 0,
        )  # fmt: skip
        Sku.objects.bulk_create(Sku(product=product, label=f"{p}元", price_fen=p * 100) for p in (10, 20, 50))


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("url", ["/", "/c/game-cards/", "/search/?q=商品", "/p/steam-wallet/"])
def test_query_count_does_not_grow_with_the_catalog(client, demo_shop, url):
    add_products(demo_shop, 1)
    before = count_queries(client, url)
    add_products(demo_shop, 40, start=1)  # more than a page of results
    assert count_queries(client, url) == before
    assert before <= 4


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

    Merchant.objects.update(status=Merchant.Status.SUSPENDED)
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
