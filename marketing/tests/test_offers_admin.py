"""Back office of 满减, first-order discounts and quantity tiers: operators run all of it; merchant
staff only their own quantity tiers and merchant-funded per-merchant spend tiers."""

from __future__ import annotations

import pytest
from django.urls import reverse

from catalog.models import Sku
from kameng.testing.fixtures import PASSWORD
from marketing.models import QuantityTier, SpendTier, SpendTierPromotion

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(demo_shop):
    own = SpendTierPromotion.objects.create(
        name="本店满减", scope="merchant", merchant=demo_shop.merchant, funded_by="merchant"
    )
    theirs = SpendTierPromotion.objects.create(
        name="他店满减", scope="merchant", merchant=demo_shop.other_merchant, funded_by="merchant"
    )
    platform = SpendTierPromotion.objects.create(name="平台满减")
    own_sku = Sku.objects.create(product=demo_shop.products["steam-wallet"], label="Q", price_fen=1_000)
    their_sku = Sku.objects.create(product=demo_shop.products["honor-of-kings"], label="Q", price_fen=1_000)
    own_tier = QuantityTier.objects.create(sku=own_sku, min_quantity=5, unit_price_fen=900)
    their_tier = QuantityTier.objects.create(sku=their_sku, min_quantity=5, unit_price_fen=900)
    return {"own": own, "theirs": theirs, "platform": platform, "own_tier": own_tier, "their_tier": their_tier,
            "own_sku": own_sku, "their_sku": their_sku}  # fmt: skip


def test_merchant_staff_see_only_their_own_offers(client, merchant_staff, rows):
    client.login(email=merchant_staff.email, password=PASSWORD)
    listing = client.get(reverse("admin:marketing_spendtierpromotion_changelist")).content.decode()
    assert "本店满减" in listing and "他店满减" not in listing and "平台满减" not in listing
    for obj in (rows["theirs"], rows["platform"]):
        assert client.get(reverse("admin:marketing_spendtierpromotion_change", args=[obj.pk])).status_code == 404
    assert client.get(reverse("admin:marketing_quantitytier_change", args=[rows["own_tier"].pk])).status_code == 200
    assert client.get(reverse("admin:marketing_quantitytier_change", args=[rows["their_tier"].pk])).status_code == 404
    assert client.get(reverse("admin:marketing_firstorderoffer_changelist")).status_code == 403


def test_a_merchants_new_spend_tier_is_theirs_and_at_their_cost(client, merchant_staff, demo_shop, rows):
    client.login(email=merchant_staff.email, password=PASSWORD)
    response = client.post(
        reverse("admin:marketing_spendtierpromotion_add"),
        {
            "name": "满100减10", "merchant": demo_shop.merchant.pk, "scope": "order", "funded_by": "platform",
            "starts_at_0": "2026-01-01", "starts_at_1": "00:00:00", "is_active": "on",
            "tiers-TOTAL_FORMS": "1", "tiers-INITIAL_FORMS": "0",
            "tiers-0-threshold_fen": "10000", "tiers-0-discount_fen": "1000",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    created = SpendTierPromotion.objects.get(name="满100减10")
    assert (created.merchant, created.scope, created.funded_by) == (demo_shop.merchant, "merchant", "merchant")
    assert list(SpendTier.objects.filter(promotion=created).values_list("threshold_fen", "discount_fen")) == [
        (10_000, 1_000)
    ]
    # Another merchant's goods are not a choice.
    response = client.post(
        reverse("admin:marketing_spendtierpromotion_add"),
        {"name": "x", "merchant": demo_shop.other_merchant.pk, "starts_at_0": "2026-01-01", "starts_at_1": "00:00:00",
         "tiers-TOTAL_FORMS": "0", "tiers-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 200 and not SpendTierPromotion.objects.filter(name="x").exists()


def test_merchant_staff_cannot_price_another_merchants_sku(client, merchant_staff, rows):
    client.login(email=merchant_staff.email, password=PASSWORD)
    response = client.post(
        reverse("admin:marketing_quantitytier_add"),
        {"sku": rows["their_sku"].pk, "min_quantity": "10", "unit_price_fen": "800"},
    )
    assert response.status_code == 200 and not QuantityTier.objects.filter(min_quantity=10).exists()
    response = client.post(
        reverse("admin:marketing_quantitytier_add"),
        {"sku": rows["own_sku"].pk, "min_quantity": "10", "unit_price_fen": "800"},
    )
    assert response.status_code == 302 and QuantityTier.objects.filter(min_quantity=10, sku=rows["own_sku"]).exists()


def test_operators_see_every_offer(client, operator, rows):
    client.login(email=operator.email, password=PASSWORD)
    listing = client.get(reverse("admin:marketing_spendtierpromotion_changelist")).content.decode()
    assert all(name in listing for name in ("本店满减", "他店满减", "平台满减"))
    assert client.get(reverse("admin:marketing_firstorderoffer_add")).status_code == 200
    assert client.get(reverse("admin:marketing_firstorderredemption_changelist")).status_code == 200
