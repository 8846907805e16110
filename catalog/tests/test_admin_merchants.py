"""Merchants in admin (accounts/admin.py): staff see only their own; operators manage all."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Merchant, User
from accounts.roles import MERCHANT_STAFF

pytestmark = pytest.mark.django_db


def signed_in(client, user):
    client.force_login(user)
    client.cookies["django_language"] = "en"
    return client


def merchant_post(merchant: Merchant, **overrides) -> dict:
    data = {
        "name": merchant.name, "slug": merchant.slug, "contact_name": merchant.contact_name,
        "contact_email": merchant.contact_email, "contact_phone": merchant.contact_phone,
        "commission_rate": str(merchant.commission_rate), "status": merchant.status,
        "users": [str(pk) for pk in merchant.users.values_list("pk", flat=True)],
    }  # fmt: skip
    data.update(overrides)
    return data


def test_merchant_staff_see_only_their_merchant(client, demo_shop, merchant_staff):
    signed_in(client, merchant_staff)
    html = client.get(reverse("admin:accounts_merchant_changelist")).content.decode()
    assert "卡盟示例商户" in html and "星辰游戏" not in html
    other = demo_shop.other_merchant
    for view in ("change", "history", "delete"):
        assert client.get(reverse(f"admin:accounts_merchant_{view}", args=[other.pk])).status_code == 404
    assert client.get(reverse("admin:accounts_merchant_add")).status_code == 403
    assert client.get(reverse("admin:accounts_merchant_change", args=[demo_shop.merchant.pk])).status_code == 200
    # ...and still no user administration.
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 403


def test_merchant_staff_cannot_change_commission_or_status(client, demo_shop, merchant_staff):
    merchant = demo_shop.merchant
    signed_in(client, merchant_staff)
    response = client.post(
        reverse("admin:accounts_merchant_change", args=[merchant.pk]),
        merchant_post(merchant, commission_rate="0.0100", status="suspended", contact_phone="13800000000",
                      name="改名", users=[]),
    )  # fmt: skip
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.commission_rate == Decimal("0.1000") and merchant.status == "active"
    assert merchant.name == "卡盟示例商户"
    assert list(merchant.users.all()) == [merchant_staff]
    assert merchant.contact_phone == "13800000000"  # contact details are theirs to keep current


def test_operators_change_commission_and_adding_users_makes_them_merchant_staff(client, demo_shop, operator):
    merchant = demo_shop.other_merchant
    newcomer = User.objects.create_user(email="newcomer@star.example")
    signed_in(client, operator)
    response = client.post(
        reverse("admin:accounts_merchant_change", args=[merchant.pk]),
        merchant_post(merchant, commission_rate="0.0800", users=[str(newcomer.pk)]),
    )
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.commission_rate == Decimal("0.0800")
    newcomer.refresh_from_db()
    assert newcomer.is_staff
    assert newcomer.groups.filter(name=MERCHANT_STAFF).exists()
    assert list(newcomer.merchants.all()) == [merchant]

    # The newcomer now sees that merchant's goods in admin, and only those.
    signed_in(client, newcomer)
    html = client.get(reverse("admin:catalog_product_changelist")).content.decode()
    assert "王者荣耀点券" in html and "Steam 钱包充值卡" not in html
