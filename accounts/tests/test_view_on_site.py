"""Admin's "view on site" (/admin/r/<content type>/<id>/) redirects only for objects the user may see."""

import uuid

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from catalog import codes
from catalog import services as catalog_services
from catalog.models import Sku
from orders import services as orders
from orders.models import Order

pytestmark = pytest.mark.django_db


def order_of(product) -> Order:
    sku = Sku.objects.create(product=product, label="查看", price_fen=700, low_stock_threshold=0)
    catalog_services.add_codes(sku=sku, secrets=[codes.Secret(f"V-{uuid.uuid4().hex[:10]}")])
    return orders.place_order(
        lines=[orders.CartLine(sku_id=sku.pk, quantity=1)],
        email="guest@example.com",
        idempotency_key=uuid.uuid4().hex,
    ).order


def shortcut(obj) -> str:
    return reverse("admin:view_on_site", args=[ContentType.objects.get_for_model(obj).pk, obj.pk])


@pytest.fixture
def own_order(demo_shop):
    return order_of(demo_shop.products["steam-wallet"])  # the demo merchant's goods


@pytest.fixture
def other_order(demo_shop):
    return order_of(demo_shop.products["honor-of-kings"])  # the other merchant's goods


def as_user(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_operator_is_sent_to_any_order(operator, own_order, other_order):
    client = as_user(operator)
    for order in (own_order, other_order):
        response = client.get(shortcut(order))
        assert response.status_code == 302 and response.url.endswith(order.get_absolute_url())


def test_merchant_staff_is_sent_to_their_own_merchants_order_only(merchant_staff, own_order, other_order):
    client = as_user(merchant_staff)
    response = client.get(shortcut(own_order))
    assert response.status_code == 302 and response.url.endswith(own_order.get_absolute_url())
    response = client.get(shortcut(other_order))
    assert response.status_code == 404
    assert other_order.number not in response.content.decode()


def test_the_other_merchant_sees_it_the_other_way_round(other_merchant_staff, own_order, other_order):
    client = as_user(other_merchant_staff)
    assert client.get(shortcut(own_order)).status_code == 404
    assert client.get(shortcut(other_order)).status_code == 302


def test_products_follow_the_same_scope(merchant_staff, demo_shop):
    client = as_user(merchant_staff)
    own, other = demo_shop.products["steam-wallet"], demo_shop.products["honor-of-kings"]
    assert client.get(shortcut(own)).status_code == 302
    assert client.get(shortcut(other)).status_code == 404


def test_anonymous_and_buyers_go_to_the_sign_in_page(user, own_order):
    for client in (as_user(None), as_user(user)):
        response = client.get(shortcut(own_order))
        assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))
        assert own_order.number not in response.url


@pytest.mark.parametrize("tail", ["999999999", "abc"])
def test_missing_or_malformed_objects_and_types_are_404(operator, own_order, tail):
    client = as_user(operator)
    content_type = ContentType.objects.get_for_model(own_order).pk
    assert client.get(f"/admin/r/{content_type}/{tail}/").status_code == 404
    assert client.get(f"/admin/r/{tail}/{own_order.pk}/").status_code == 404
    assert client.get(f"/admin/r/{ContentType.objects.get_for_model(ContentType).pk}/1/").status_code == 404
