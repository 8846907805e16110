"""The coupon on the checkout page: apply, refuse with the reason, remove, a code typed but not
applied before placing, a better first-order offer, and the page's queries with growing carts."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from marketing.models import Coupon, CouponRedemption
from orders import pricing
from orders.models import Order
from orders.tests.conftest import make_sku
from orders.tests.test_views import checkout_form, count_queries, in_stock_skus

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    browser = Client()
    browser.cookies["django_language"] = "en"
    return browser


@pytest.fixture
def in_cart(client, demo_shop):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=5, price_fen=1_000)
    client.post(reverse("orders:cart_add"), {"sku": sku.pk, "quantity": 2})
    Coupon.objects.create(code="TENOFF", name="ten", kind="percent", percent=10, funded_by="merchant",
                          merchant=demo_shop.merchant, min_spend_fen=1_500)  # fmt: skip
    return sku


def update(client, value: str, **data):
    return client.post(reverse("orders:checkout"), {**checkout_form(client), "update": value, **data})


def test_an_applied_coupon_is_shown_in_the_total_and_placed_with_the_order(client, in_cart):
    page = update(client, "coupon-apply", coupon_code=" tenoff ")
    assert page.status_code == 200
    assert page.context["quote"].total_fen == 1_800
    html = page.content.decode()
    assert "Coupon applied: ¥2.00 off." in html and "Coupon TENOFF" in html
    assert not Order.objects.exists()  # applying places nothing
    response = client.post(reverse("orders:checkout"), {**checkout_form(client), "email": "c@example.com"})
    assert response.status_code == 302
    order = Order.objects.get()
    assert (order.total_fen, order.discount_fen) == (1_800, 200)
    assert CouponRedemption.objects.get(order=order).status == "held"
    assert [a["ref"] for a in order.pricing["adjustments"]] == ["TENOFF"]


def test_a_refused_code_says_why_and_can_be_removed(client, in_cart):
    page = update(client, "coupon-apply", coupon_code="NOSUCH")
    assert "There is no coupon with this code." in page.content.decode()
    assert page.context["quote"].total_fen == 2_000
    client.post(reverse("orders:checkout"), {**checkout_form(client), "update": "1", f"qty_{in_cart.pk}": "1"})
    page = update(client, "coupon-apply", coupon_code="TENOFF")  # one unit: 10.00, below the 15.00 minimum
    assert "This coupon needs a spend of at least ¥15.00 on the goods it covers." in page.content.decode()
    page = update(client, "coupon-remove")
    assert page.context["coupon_code"] == ""
    assert 'id="coupon-refusal"' not in page.content.decode()


def test_a_code_typed_but_not_applied_is_applied_and_shown_before_anything_is_placed(client, in_cart):
    form = {**checkout_form(client), "email": "c@example.com", "coupon_code": "TENOFF"}
    page = client.post(reverse("orders:checkout"), form)
    assert page.status_code == 200
    assert not Order.objects.exists()
    assert page.context["quote"].total_fen == 1_800
    response = client.post(reverse("orders:checkout"), {**checkout_form(client), "email": "c@example.com",
                                                        "coupon_code": "tenoff"})  # fmt: skip
    assert response.status_code == 302
    assert Order.objects.get().total_fen == 1_800


def test_the_page_says_when_a_better_first_order_offer_was_taken_instead(client, in_cart):
    saved = list(pricing.RULES)
    try:

        @pricing.register_rule("first_order", order=400, group=pricing.ORDER_OFFER)
        def first_order(quote):
            quote.add(pricing.Adjustment(rule="first_order", label="first", amount_fen=500))

        page = update(client, "coupon-apply", coupon_code="TENOFF")
    finally:
        pricing.RULES[:] = saved
    assert page.context["quote"].total_fen == 1_500
    assert "Your coupon (¥2.00 off) was not combined: the first-order discount saves you more." in page.content.decode()


def test_the_checkout_with_a_coupon_makes_as_many_queries_for_one_line_as_for_eight(client, demo_shop):
    skus = in_stock_skus(demo_shop, 8)
    Coupon.objects.create(code="ALL", name="all", amount_fen=100, per_user_limit=1)
    client.post(reverse("orders:cart_add"), {"sku": skus[0].pk, "quantity": 1})
    assert update(client, "coupon-apply", coupon_code="ALL").context["coupon_discount_fen"] > 0
    one_line = count_queries(client, reverse("orders:checkout"))
    for sku in skus[1:]:
        client.post(reverse("orders:cart_add"), {"sku": sku.pk, "quantity": 1})
    assert client.get(reverse("orders:checkout")).context["coupon_discount_fen"] > 0
    assert count_queries(client, reverse("orders:checkout")) == one_line


def test_trying_codes_counts_against_the_checkout_limit(client, in_cart, settings):
    settings.CHECKOUT_RATE_LIMIT = "3/m"
    for guess in ("AAAA", "BBBB", "CCCC"):
        assert update(client, "coupon-apply", coupon_code=guess).context["coupon_code"] == guess
    page = update(client, "coupon-apply", coupon_code="TENOFF")  # the fourth try this minute
    assert "Too many attempts. Please wait a minute and try again." in page.content.decode()
    assert page.context["coupon_code"] == "CCCC"  # not tried
    assert page.context["quote"].total_fen == 2_000
    assert not Order.objects.exists()
