"""The coupon back office: operators see every coupon, merchant staff only their own merchant-funded
ones; bulk generation of unique codes and their .xlsx export; access to the generate URL."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from marketing import services
from marketing.models import Coupon

pytestmark = pytest.mark.django_db


@pytest.fixture
def coupons(demo_shop):
    return {
        "platform": Coupon.objects.create(code="PLAT", name="platform", amount_fen=100),
        "ours": Coupon.objects.create(
            code="OURS", name="ours", amount_fen=100, funded_by="merchant", merchant=demo_shop.merchant
        ),
        "theirs": Coupon.objects.create(
            code="THEIRS", name="theirs", amount_fen=100, funded_by="merchant", merchant=demo_shop.other_merchant
        ),
    }


def changelist_codes(client) -> set[str]:
    response = client.get(reverse("admin:marketing_coupon_changelist"))
    assert response.status_code == 200
    return {coupon.code for coupon in response.context["cl"].result_list}


def test_operators_see_every_coupon_and_merchant_staff_only_their_own(client, operator, merchant_staff, coupons):
    client.force_login(operator)
    assert changelist_codes(client) == {"PLAT", "OURS", "THEIRS"}
    client.force_login(merchant_staff)
    assert changelist_codes(client) == {"OURS"}
    for other in ("platform", "theirs"):
        url = reverse("admin:marketing_coupon_change", args=[coupons[other].pk])
        assert client.get(url).status_code == 404


def test_merchant_staff_create_only_coupons_they_fund(client, merchant_staff, demo_shop):
    client.force_login(merchant_staff)
    base = {"code": "mine10", "name": "mine", "is_active": "on", "kind": "fixed", "amount_fen": "1000",
            "percent": "0", "min_spend_fen": "0", "scope": "all", "per_user_limit": "1"}  # fmt: skip
    add = reverse("admin:marketing_coupon_add")
    refused = client.post(add, {**base, "funded_by": "platform", "merchant": str(demo_shop.merchant.pk)})
    assert refused.status_code == 200 and "funded_by" in refused.context["adminform"].form.errors
    refused = client.post(add, {**base, "funded_by": "merchant", "merchant": str(demo_shop.other_merchant.pk)})
    assert refused.status_code == 200 and "merchant" in refused.context["adminform"].form.errors
    assert not Coupon.objects.exists()
    made = client.post(add, {**base, "funded_by": "merchant", "merchant": str(demo_shop.merchant.pk)})
    assert made.status_code == 302
    coupon = Coupon.objects.get()
    assert (coupon.code, coupon.funded_by, coupon.merchant_id) == ("MINE10", "merchant", demo_shop.merchant.pk)


def test_generated_codes_are_unique_copies_of_the_template_and_export_to_xlsx(client, operator, coupons):
    template = coupons["platform"]
    template.min_spend_fen, template.total_limit = 5_000, 1
    template.save()
    client.force_login(operator)
    url = reverse("admin:marketing_coupon_generate", args=[template.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"count": "300", "prefix": "spring"})
    assert response.status_code == 302
    made = Coupon.objects.filter(generated_from=template)
    codes = list(made.values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 300
    assert all(code.startswith("SPRING") and len(code) == 16 for code in codes)
    assert set(made.values_list("min_spend_fen", "total_limit", "used_count", "funded_by")) == {
        (5_000, 1, 0, "platform")
    }

    export = client.post(
        reverse("admin:marketing_coupon_changelist"),
        {"action": "export_codes", "_selected_action": [str(template.pk)]},
    )
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(export.streaming_content)), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "code"
    assert {row[0] for row in rows[1:]} == {"PLAT", *codes}


def test_the_generate_url_answers_only_the_coupons_admin(client, user, merchant_staff, other_merchant_staff, coupons):
    url = reverse("admin:marketing_coupon_generate", args=[coupons["ours"].pk])
    assert client.get(url).status_code == 302  # anonymous: to the admin's sign-in
    assert "/login/" in client.get(url)["Location"]
    client.force_login(user)  # a buyer
    assert "/login/" in client.get(url)["Location"]
    client.force_login(other_merchant_staff)  # another merchant
    assert client.get(url).status_code == 404
    assert client.post(url, {"count": "5"}).status_code == 404
    assert not Coupon.objects.filter(generated_from=coupons["ours"]).exists()
    client.force_login(merchant_staff)
    assert client.post(url, {"count": "5"}).status_code == 302
    assert Coupon.objects.filter(generated_from=coupons["ours"], merchant=coupons["ours"].merchant).count() == 5


def test_generation_draws_again_when_a_code_is_taken(coupons, monkeypatch):
    drawn = iter(["OURS", "X1", "x1", "X2"])  # "OURS" exists; "x1" repeats "X1" in another case
    monkeypatch.setattr(services, "_random_code", lambda prefix, length: next(drawn).upper())
    made = services.generate_coupon_codes(template=coupons["platform"], count=2)
    assert sorted(c.code for c in made) == ["X1", "X2"]
