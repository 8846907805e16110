"""Reviews: once per delivered item, by its buyer only; merchants reply to their own; operators
hide; the stored average follows. Related products after the beat task."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from catalog import related, reviews
from catalog.models import Product, ProductRelation, Review
from kameng.testing.fixtures import PASSWORD
from orders import reviews as order_reviews
from orders.models import Order
from orders.services import CartLine
from orders.tasks import compute_related_products
from orders.tests.conftest import pay, place

pytestmark = pytest.mark.django_db(transaction=True)


def buyer(email: str) -> User:
    return User.objects.create_user(email=email, password=PASSWORD, nickname=email.split("@")[0])


def signed_in(client, user):
    client.force_login(user)
    return client


def order_of(shop, user, *slugs):
    skus = [shop.products[slug].skus.first() for slug in slugs]
    from orders import services

    placed = services.place_order(
        lines=[CartLine(sku_id=sku.pk, quantity=1) for sku in skus], buyer=user, email=user.email,
        idempotency_key=f"{user.pk}-{'-'.join(slugs)}",
    )  # fmt: skip
    pay(placed.order)
    placed.order.refresh_from_db()
    return placed.order


def test_buyer_reviews_a_delivered_item_once_and_the_average_follows(client, demo_shop):
    alice = buyer("alice@example.com")
    order = order_of(demo_shop, alice, "steam-wallet")
    assert order.status == Order.Status.DELIVERED
    item = order.items.get()
    page = signed_in(client, alice).get(order.get_absolute_url()).content.decode()
    assert f"/orders/items/{item.pk}/review/" in page  # the form on the order page
    response = client.post(f"/orders/items/{item.pk}/review/", {"rating": "4", "comment": "到账很快"})
    assert response.status_code == 302
    product = Product.objects.get(slug="steam-wallet")
    assert (product.rating_count, product.rating_avg) == (1, Decimal("4.00"))
    # once per item: a second post is refused and changes nothing
    assert client.post(f"/orders/items/{item.pk}/review/", {"rating": "1"}).status_code == 404
    assert Review.objects.count() == 1
    with pytest.raises(reviews.ReviewRefused):
        order_reviews.post_review(user=alice, item_id=item.pk, rating=1, comment="")
    # a second buyer's 2 stars: average 3
    bob = buyer("bob@example.com")
    bob_item = order_of(demo_shop, bob, "steam-wallet").items.get()
    order_reviews.post_review(user=bob, item_id=bob_item.pk, rating=2, comment="一般")
    product.refresh_from_db()
    assert (product.rating_count, product.rating_avg) == (2, Decimal("3.00"))
    html = client.get("/p/steam-wallet/").content.decode()
    assert "到账很快" in html and "一般" in html
    assert "a***e" in html and "alice@example.com" not in html and "b***b" in html  # masked names
    assert html.index("一般") < html.index("到账很快")  # newest first
    assert "3.0" in html


def test_rating_must_be_1_to_5(client, demo_shop):
    alice = buyer("alice@example.com")
    item = order_of(demo_shop, alice, "steam-wallet").items.get()
    signed_in(client, alice).post(f"/orders/items/{item.pk}/review/", {"rating": "6"})
    signed_in(client, alice).post(f"/orders/items/{item.pk}/review/", {"rating": "0"})
    assert not Review.objects.exists()


def test_hidden_reviews_are_neither_shown_nor_counted(client, demo_shop, operator):
    alice, bob = buyer("alice@example.com"), buyer("bob@example.com")
    order_reviews.post_review(
        user=alice, item_id=order_of(demo_shop, alice, "steam-wallet").items.get().pk, rating=5, comment="好评好评"
    )
    spam = order_reviews.post_review(
        user=bob, item_id=order_of(demo_shop, bob, "steam-wallet").items.get().pk, rating=1, comment="加微信买便宜卡"
    )
    admin = signed_in(client, operator)
    response = admin.post("/admin/catalog/review/", {"action": "hide", "_selected_action": [spam.pk]}, follow=True)
    assert response.status_code == 200
    spam.refresh_from_db()
    assert spam.is_hidden
    product = Product.objects.get(slug="steam-wallet")
    assert (product.rating_count, product.rating_avg) == (1, Decimal("5.00"))
    client.logout()
    html = client.get("/p/steam-wallet/").content.decode()
    assert "好评好评" in html and "加微信买便宜卡" not in html


def test_nobody_else_reviews_an_item(client, demo_shop):
    alice, mallory = buyer("alice@example.com"), buyer("mallory@example.com")
    item = order_of(demo_shop, alice, "steam-wallet").items.get()
    # anonymous: to the sign-in page, nothing stored
    response = client.post(f"/orders/items/{item.pk}/review/", {"rating": "1"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    # another buyer: 404, and the order page shows them nothing either
    assert signed_in(client, mallory).post(f"/orders/items/{item.pk}/review/", {"rating": "1"}).status_code == 404
    assert client.get(f"/orders/items/{item.pk}/review/").status_code in (404, 405)
    assert not Review.objects.exists()
    with pytest.raises(reviews.ReviewRefused):
        order_reviews.post_review(user=mallory, item_id=item.pk, rating=1, comment="")


def test_an_undelivered_item_cannot_be_reviewed(client, demo_shop):
    alice = buyer("alice@example.com")
    order = place(demo_shop.products["steam-wallet"].skus.first(), buyer=alice, email=alice.email).order
    item = order.items.get()
    assert signed_in(client, alice).post(f"/orders/items/{item.pk}/review/", {"rating": "5"}).status_code == 404
    assert f"/orders/items/{item.pk}/review/" not in client.get(order.get_absolute_url()).content.decode()


def test_merchant_replies_to_own_reviews_only(client, demo_shop, merchant_staff, other_merchant_staff):
    alice = buyer("alice@example.com")
    order = order_of(demo_shop, alice, "steam-wallet", "honor-of-kings")  # two merchants' goods
    mine = order_reviews.post_review(
        user=alice, item_id=order.items.get(merchant=demo_shop.merchant).pk, rating=3, comment="还行"
    )
    theirs = order_reviews.post_review(
        user=alice, item_id=order.items.get(merchant=demo_shop.other_merchant).pk, rating=3, comment="还行"
    )
    staff = signed_in(client, merchant_staff)
    listing = staff.get("/admin/catalog/review/").content.decode()
    assert f"/admin/catalog/review/{mine.pk}/change/" in listing
    assert f"/admin/catalog/review/{theirs.pk}/change/" not in listing
    assert staff.get(f"/admin/catalog/review/{theirs.pk}/change/").status_code == 404
    response = staff.post(f"/admin/catalog/review/{theirs.pk}/change/", {"reply": "抢答"})
    assert response.status_code == 404
    response = staff.post(f"/admin/catalog/review/{mine.pk}/change/", {"reply": "感谢支持", "_save": "1"})
    assert response.status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.reply == "感谢支持" and mine.replied_at and theirs.reply == ""
    # merchants cannot hide: the field is not theirs, the action not offered
    staff.post(f"/admin/catalog/review/{mine.pk}/change/", {"reply": "感谢支持", "is_hidden": "on", "_save": "1"})
    mine.refresh_from_db()
    assert not mine.is_hidden
    assert staff.post("/admin/catalog/review/", {"action": "hide", "_selected_action": [mine.pk]}).status_code in (
        200,
        302,
    )
    mine.refresh_from_db()
    assert not mine.is_hidden
    html = client.get("/p/steam-wallet/").content.decode()
    assert "感谢支持" in html


def test_product_page_query_count_with_reviews_is_constant(client, demo_shop):
    users = [buyer(f"u{n}@example.com") for n in range(3)]
    for user in users[:1]:
        order_reviews.post_review(
            user=user, item_id=order_of(demo_shop, user, "steam-wallet").items.get().pk, rating=5, comment="x"
        )

    def count() -> int:
        client.get("/p/steam-wallet/")
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/p/steam-wallet/").status_code == 200
        return len(queries)

    before = count()
    for user in users[1:]:
        order_reviews.post_review(
            user=user, item_id=order_of(demo_shop, user, "steam-wallet").items.get().pk, rating=4, comment="y"
        )
    assert count() == before
    assert before <= 7  # the page's 6 (its tags: catalog/tests/test_storefront.py) and one for the page of reviews


def test_related_products_after_the_task(client, demo_shop):
    alice, bob = buyer("alice@example.com"), buyer("bob@example.com")
    order_of(demo_shop, alice, "steam-wallet", "python-course")
    order_of(demo_shop, bob, "steam-wallet", "python-course")
    order_of(demo_shop, bob, "qq-music-vip", "iqiyi-vip")
    # unpaid orders do not count
    place(demo_shop.products["steam-wallet"].skus.first(), email="x@example.com")
    assert compute_related_products.delay().get() > 0
    relation = ProductRelation.objects.get(product__slug="steam-wallet")
    assert relation.related.slug == "python-course" and relation.score == 2
    found = [p.slug for p in related.related_for(product_ids=[demo_shop.products["steam-wallet"].pk])]
    assert found[0] == "python-course"
    # topped up from the same category (game cards), never the product itself
    assert "steam-wallet" not in found and {"netease-points", "honor-of-kings"} & set(found)
    html = client.get("/p/steam-wallet/").content.decode()
    assert "Python 入门课程兑换码" in html and 'class="related"' in html
    # the order page shows them too
    order = Order.objects.filter(buyer=alice).first()
    html = signed_in(client, alice).get(order.get_absolute_url()).content.decode()
    assert 'class="related"' in html


def test_without_purchases_related_falls_back_to_the_category(client, demo_shop):
    found = {p.slug for p in related.find_related(product_ids=[demo_shop.products["qq-music-vip"].pk])}
    assert found == {"iqiyi-vip"}
