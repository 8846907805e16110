"""The offers as buyers see them: the product page lists 满减 tiers, the first-order discount and
quantity tiers in a constant number of queries; the checkout's breakdown reads one row per offer."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog import codes
from catalog import services as catalog_services
from catalog.models import Sku
from kameng.testing.fixtures import PASSWORD
from marketing.models import FirstOrderOffer, QuantityTier, SpendTier, SpendTierPromotion

pytestmark = pytest.mark.django_db


def promotion(*tiers, **fields):
    created = SpendTierPromotion.objects.create(name="满减", **fields)
    for threshold, discount in tiers:
        SpendTier.objects.create(promotion=created, threshold_fen=threshold, discount_fen=discount)
    return created


def product_page(client, product):
    # The steady state: a first request fills the caches the page reads (the claimable coupons' and
    # the promotions' snapshots), so the count compares the page's own queries.
    client.get(reverse("catalog:product", args=[product.slug]))
    with CaptureQueriesContext(connection) as captured:
        html = client.get(reverse("catalog:product", args=[product.slug])).content.decode()
    return html, len(captured)


def test_product_page_shows_tiers_in_constant_queries(client, demo_shop):
    product = demo_shop.products["steam-wallet"]
    promotion((10_000, 1_000))
    product_page(client, product)  # the steady state: the claimable coupons' snapshot is warm
    html, baseline = product_page(client, product)
    assert "满100减10" in html
    promotion((20_000, 2_500), (30_000, 4_000), scope="merchant", merchant=demo_shop.merchant, funded_by="merchant")
    promotion((5_000, 500), scope="merchant", merchant=demo_shop.other_merchant, funded_by="merchant")  # not theirs
    FirstOrderOffer.objects.create(name="新客", kind="fixed", amount_fen=800)
    for sku in product.skus.all():
        QuantityTier.objects.create(sku=sku, min_quantity=5, unit_price_fen=sku.price_fen - 100)
        QuantityTier.objects.create(sku=sku, min_quantity=10, unit_price_fen=sku.price_fen - 200)
    product_page(client, product)  # the offers' snapshot, dropped by the saves, is read again once
    html, grown = product_page(client, product)
    assert grown == baseline  # nothing per SKU, promotion or tier
    assert "满100减10 · 满200减25 · 满300减40" in html and "满50减5" not in html
    assert "首单立减 ¥8" in html
    sku = product.skus.order_by("price_fen").first()
    assert f"买5件起 ¥{(sku.price_fen - 100) // 100}" in html


def test_signed_in_buyer_with_a_paid_order_is_not_offered_the_first_order_discount(client, demo_shop, user):
    from orders.models import Order

    FirstOrderOffer.objects.create(name="新客", kind="percent", percent=10, cap_fen=2_000)
    client.login(email=user.email, password=PASSWORD)
    product = demo_shop.products["steam-wallet"]
    assert "首单 10% 折扣，最多减 ¥20" in product_page(client, product)[0]
    Order.objects.create(
        number="X1", buyer=user, email=user.email, subtotal_fen=100, total_fen=100, reserved_until="2026-01-01T00:00Z",
        idempotency_key="k1", status="delivered", paid_at="2026-01-01T00:00Z",
    )  # fmt: skip
    assert "首单" not in product_page(client, product)[0]


def test_checkout_breakdown_has_one_row_per_offer(client, demo_shop):
    steam, kings = demo_shop.products["steam-wallet"], demo_shop.products["honor-of-kings"]
    a = Sku.objects.create(product=steam, label="A", price_fen=6_000)
    b = Sku.objects.create(product=steam, label="B", price_fen=4_000)
    c = Sku.objects.create(product=kings, label="C", price_fen=2_000)
    for sku in (a, b, c):
        catalog_services.add_codes(sku=sku, secrets=[codes.Secret(f"{sku.label}-{i}") for i in range(3)])
    promotion((10_000, 1_000), scope="merchant", merchant=demo_shop.merchant, funded_by="merchant")
    session = client.session
    session["kameng_cart"] = [{"sku": a.pk, "qty": 1}, {"sku": b.pk, "qty": 1}, {"sku": c.pk, "qty": 1}]
    session.save()
    html = client.get(reverse("orders:checkout")).content.decode()
    assert html.count("满100减10") == 1  # ¥6 + ¥4 over two lines, one row
    assert "<dt>满100减10</dt><dd>−¥10.00</dd>" in html
