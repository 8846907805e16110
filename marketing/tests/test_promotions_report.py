"""The promotions report: figures per promotion from paid orders (uses, discount by funder, revenue, new
users), merchant staff see only their own promotions' rows, the .xlsx has the same figures, the page's
queries do not grow with the number of promotions, and who may open it."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from accounts.models import User
from marketing import report
from marketing.models import Coupon, FlashSpecial, Referral
from orders.tests.conftest import make_sku, pay, place

pytestmark = pytest.mark.django_db

URL = "admin:marketing_promotions_report"


@pytest.fixture
def sales(demo_shop):
    own = make_sku(demo_shop.products["steam-wallet"], codes_count=10, label="R1", price_fen=10_000)
    theirs = make_sku(demo_shop.products["honor-of-kings"], codes_count=10, label="R2", price_fen=10_000)
    assert (own.product.merchant, theirs.product.merchant) == (demo_shop.merchant, demo_shop.other_merchant)
    Coupon.objects.create(code="PLAT", name="平台券", amount_fen=500)
    Coupon.objects.create(code="OWN", name="own", amount_fen=300, funded_by="merchant", merchant=demo_shop.merchant)
    now = timezone.now()
    FlashSpecial.objects.create(
        sku=theirs, special_price_fen=9_000, quantity_cap=10, per_buyer_limit=5,
        starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1),
    )  # fmt: skip
    u1 = User.objects.create_user(email="u1@example.com", password="x")
    u2 = User.objects.create_user(email="u2@example.com", password="x")
    paid = [
        place(own, buyer=u1, email=u1.email, coupon_code="PLAT").order,
        place(own, buyer=u1, email=u1.email, coupon_code="OWN").order,
        place(theirs, 2, email="guest@example.com").order,
        services_place_two(own, theirs, buyer=u2, coupon_code="OWN"),
    ]
    for order in paid:
        pay(order)
    place(own, email="unpaid@example.com", coupon_code="PLAT")  # not paid: not counted
    return {"own": own, "theirs": theirs, "orders": paid}


def services_place_two(first, second, **kwargs):
    import uuid

    from orders import services

    return services.place_order(
        lines=[services.CartLine(sku_id=first.pk, quantity=1), services.CartLine(sku_id=second.pk, quantity=1)],
        email=kwargs["buyer"].email, idempotency_key=uuid.uuid4().hex, **kwargs,
    ).order  # fmt: skip


def figures(rows):
    return {(r.kind, r.key): (r.uses, r.platform_fen, r.merchant_fen, r.revenue_fen, r.new_users) for r in rows}


def today_report(**kwargs):
    today = timezone.localdate()
    return report.build(start=today, end=today, **kwargs)


def test_each_promotions_uses_discount_by_funder_revenue_and_new_users(sales, demo_shop):
    special = FlashSpecial.objects.get()
    assert figures(today_report().rows) == {
        ("coupon", "PLAT"): (1, 500, 0, 9_500, 1),  # u1's first order
        # u1's second order and u2's: only merchant A's line counts as its revenue (10 000 − 300 each)
        ("coupon", "OWN"): (2, 0, 600, 19_400, 1),
        # the guest's 2 units and u2's unit: 1 000 off each, merchant-funded; both buyers are new
        ("flash_special", str(special.pk)): (2, 0, 3_000, 27_000, 2),
    }
    assert figures(today_report(merchant_ids=[demo_shop.merchant.pk]).rows) == {
        ("coupon", "OWN"): (2, 0, 600, 19_400, 1)
    }
    assert set(figures(today_report(merchant_ids=[demo_shop.other_merchant.pk]).rows)) == {
        ("flash_special", str(special.pk))
    }
    yesterday = timezone.localdate() - timedelta(days=1)
    assert report.build(start=yesterday, end=yesterday).rows == []


def test_referral_sign_ups_and_a_registered_source_add_rows(sales):
    inviter = User.objects.get(email="u1@example.com")
    Referral.objects.create(invitee=User.objects.create_user(email="new@example.com", password="x"), inviter=inviter)

    registered = list(report.SOURCES)

    @report.register_source("stand_in", label="Stand-in", order=900)
    def stand_in_rows(period):
        return [report.Row(kind="stand_in", key="s1", name="Spring", merchant_id=None, uses=len(period.orders))]

    try:
        rows = figures(today_report().rows)
        assert rows[("referral", "programme")] == (0, 0, 0, 0, 1)
        assert rows[("stand_in", "s1")] == (4, 0, 0, 0, 0)
    finally:
        report.SOURCES[:] = registered


def test_the_page_and_the_xlsx_show_the_same_figures_in_yuan(client, operator, sales):
    client.force_login(operator)
    today = f"{timezone.localdate():%Y-%m-%d}"
    page = client.get(reverse(URL), {"start": today, "end": today})
    assert page.status_code == 200
    html = page.content.decode()
    assert "¥194.00" in html and "¥270.00" in html and "平台券" in html
    assert 'id="promotions-chart-data"' in html and "vendor/echarts/echarts.min.js" in html
    export = client.get(reverse(URL), {"start": today, "end": today, "export": "xlsx"})
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(export.streaming_content))).active
    rows = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=3)]
    by_name = {row[1]: row[2:] for row in rows}
    assert [float(v) for v in by_name["OWN · own"]] == [2, 0, 6, 6, 194, 1]
    assert [float(v) for v in by_name["PLAT · 平台券"]] == [1, 5, 0, 5, 95, 1]
    assert [float(v) for v in rows[-1][2:]] == [5, 5, 36, 41, 559, 4]  # the totals row: the sum of the rows


def test_the_pages_queries_do_not_grow_with_the_number_of_promotions(client, operator, sales, demo_shop):
    client.force_login(operator)
    today = f"{timezone.localdate():%Y-%m-%d}"
    client.get(reverse(URL), {"start": today, "end": today})  # warm caches (sessions, content types)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse(URL), {"start": today, "end": today})
    for index in range(4):
        Coupon.objects.create(code=f"MORE{index}", name="more", amount_fen=100)
        pay(place(sales["own"], email=f"m{index}@example.com", coupon_code=f"MORE{index}").order)
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse(URL), {"start": today, "end": today})
    assert len(response.context["report"].rows) == 3 + 4
    assert len(many.captured_queries) == len(few.captured_queries)


def test_who_may_open_the_report(client, sales, merchant_staff, other_merchant_staff, user):
    url = reverse(URL)
    assert client.get(url).status_code == 302  # anonymous: the admin's sign-in
    client.force_login(user)
    assert client.get(url).status_code == 302  # a buyer is no staff
    staff = User.objects.create_user(email="plain-staff@example.com", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    client.force_login(merchant_staff)
    page = client.get(url)
    assert page.status_code == 200 and [r.key for r in page.context["report"].rows] == ["OWN"]
    client.force_login(other_merchant_staff)
    assert [r.kind for r in client.get(url).context["report"].rows] == ["flash_special"]


def test_a_bad_range_is_refused_with_a_message(client, operator):
    client.force_login(operator)
    client.cookies["django_language"] = "en"
    page = client.get(reverse(URL), {"start": "2026-05-02", "end": "2026-05-01"})
    assert page.status_code == 200 and page.context["report"] is None
    assert "The end is before the start." in page.content.decode()


def test_campaign_and_win_back_rows(demo_shop):
    """A campaign counts its items' special prices and its coupon; a win-back programme counts the
    orders that used one of its grants — each from the same paid orders as the other rows."""
    from marketing import wallet
    from marketing.models import Campaign, CampaignItem, CouponGrant, WinBackProgramme

    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=10, label="C1", price_fen=10_000)
    now = timezone.now()
    coupon = Coupon.objects.create(code="FEST", name="fest", amount_fen=700)
    campaign = Campaign.objects.create(
        title="双十二", slug="d12", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=3), coupon=coupon
    )
    CampaignItem.objects.create(campaign=campaign, sku=sku, special_price_fen=9_000)
    back = Coupon.objects.create(code="BACK", name="back", amount_fen=400, holders_only=True)
    programme = WinBackProgramme.objects.create(name="回归礼", idle_days=30, coupon=back, period_days=90)
    buyer = User.objects.create_user(email="c1@example.com", password="x")
    wallet.grant(back, buyer, source=CouponGrant.Source.WINBACK, programme=programme)
    with_coupon = place(sku, buyer=buyer, email=buyer.email, coupon_code="FEST").order  # special + coupon
    special_only = place(sku, email="c2@example.com").order
    won_back = place(sku, buyer=buyer, email=buyer.email, coupon_code="BACK").order
    place(sku, email="unpaid@example.com")  # not paid: not counted
    for order in (with_coupon, special_only, won_back):
        pay(order)
    rows = figures(today_report().rows)
    # three paid orders took the campaign's price (¥10 off each, merchant-funded), one its coupon
    assert rows[("campaign", str(campaign.pk))] == (3, 700, 3_000, 9_000 - 700 + 9_000 + 9_000 - 400, 2)
    assert rows[("winback", str(programme.pk))] == (1, 400, 0, 9_000 - 400, 0)
