"""The operators' price preview per role: the engine's price for a guest, each member level and an annual
member — the same as the checkout charges a real buyer of that role — with the breakdown; operators
only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import LoyaltyAccount, MemberLevel, User
from catalog.models import LevelPrice
from marketing.models import QuantityTier
from orders import price_preview
from orders.models import Membership, MembershipPlan
from orders.tests.conftest import make_sku, place

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(demo_shop):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=40, label="P", price_fen=10_000)
    sku.cost_fen = 8_000
    sku.save(update_fields=["cost_fen"])
    silver = MemberLevel.objects.create(name="白银", name_en="Silver", threshold_fen=0, discount_percent=5)
    gold = MemberLevel.objects.create(name="黄金", name_en="Gold", threshold_fen=100_000, discount_percent=5)
    LevelPrice.objects.create(level=gold, sku=sku, price_fen=7_000)  # below cost: the level price stops at cost
    MembershipPlan.objects.update(is_active=False)  # the demo's plan: off sale, so one plan is previewed
    plan = MembershipPlan.objects.create(name="年卡", price_fen=9_900, discount_percent=8)
    QuantityTier.objects.create(sku=sku, min_quantity=5, unit_price_fen=9_300)
    return {"sku": sku, "silver": silver, "gold": gold, "plan": plan}


def buyer(email, *, level=None, plan=None):
    user = User.objects.create_user(email=email, password="x")
    LoyaltyAccount.objects.create(user=user, level=level)
    if plan is not None:
        now = timezone.now()
        Membership.objects.create(user=user, plan=plan, discount_percent=plan.discount_percent, started_at=now,
                                  ends_at=now + timedelta(days=300))  # fmt: skip
    return user


def test_each_roles_price_is_what_the_checkout_charges_that_role(setup):
    sku = setup["sku"]
    prices = {price.role.key: price for price in price_preview.preview(sku=sku, quantity=5)}
    silver, gold, plan = setup["silver"], setup["gold"], setup["plan"]
    assert list(prices) == ["guest", f"level:{silver.pk}", f"level:{gold.pk}", f"plan:{plan.pk}"]
    expected = {  # (one unit, five units)
        "guest": (10_000, 46_500),  # five: the quantity tier
        f"level:{silver.pk}": (9_500, 46_500),  # one: 5 % off; five: the tier is better
        # the explicit 70.00 stops at the cost (80.00), and the platform funds at most its 10 % commission
        f"level:{gold.pk}": (9_000, 45_000),
        f"plan:{plan.pk}": (9_200, 46_000),  # 8 % off, better than the tier
    }
    assert {key: (p.unit_total_fen, p.bulk_total_fen) for key, p in prices.items()} == expected
    # The breakdown names the rule that won, what was capped and why, and the offers passed over.
    (gold_price,) = prices[f"level:{gold.pk}"].adjustments
    assert (gold_price.amount_fen, gold_price.capped_fen, gold_price.capped_by) == (5_000, 5_000, "platform_commission")
    assert [a.rule for a in prices[f"plan:{plan.pk}"].adjustments] == ["annual_membership"]
    assert [p["rule"] for p in prices[f"plan:{plan.pk}"].passed_over] == ["quantity_tier"]
    # Real buyers of each role, through the checkout's place_order: the same totals.
    buyers = {
        "guest": None,
        f"level:{silver.pk}": buyer("s@example.com", level=silver),
        f"level:{gold.pk}": buyer("g@example.com", level=gold),
        f"plan:{plan.pk}": buyer("m@example.com", plan=plan),
    }
    for key, who in buyers.items():
        for quantity, index in ((1, 0), (5, 1)):
            email = who.email if who else f"guest{quantity}@example.com"
            order = place(sku, quantity, buyer=who, email=email).order
            assert order.total_fen == expected[key][index], (key, quantity)
            preview = prices[key].unit if quantity == 1 else prices[key].bulk
            assert [(a["rule"], a["amount_fen"]) for a in order.pricing["adjustments"]] == [
                (a.rule, a.amount_fen) for a in preview.adjustments
            ]


def test_a_cap_is_shown_with_its_reason(setup, demo_shop):
    sku = setup["sku"]
    demo_shop.merchant.commission_rate = "0.05"  # the platform funds at most 5.00 a unit now
    demo_shop.merchant.save(update_fields=["commission_rate"])
    prices = {price.role.key: price for price in price_preview.preview(sku=sku, quantity=1)}
    member = prices[f"plan:{setup['plan'].pk}"]
    (adjustment,) = member.adjustments
    assert (adjustment.amount_fen, adjustment.capped_fen, adjustment.capped_by) == (500, 300, "platform_commission")
    checkout = place(sku, 1, buyer=buyer("m2@example.com", plan=setup["plan"]), email="m2@example.com").order
    assert checkout.total_fen == member.unit_total_fen == 9_500


def test_operators_only(client, setup, operator, merchant_staff, user):
    url = reverse("admin:orders_price_preview", args=[setup["sku"].pk])
    assert client.get(url).status_code == 302  # anonymous: sign in
    client.force_login(merchant_staff)
    assert client.get(url).status_code == 403
    client.force_login(operator)
    page = client.get(url, {"quantity": "5"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "¥465.00" in html and "¥460.00" in html and "年卡" in html
    assert client.get(reverse("admin:orders_price_preview", args=[999_999])).status_code == 404
    change = client.get(reverse("admin:catalog_sku_change", args=[setup["sku"].pk])).content.decode()
    assert url in change  # linked from the SKU's page
