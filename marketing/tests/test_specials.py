"""Flash specials (marketing/specials.py): the price rule in fen, redemption at placement, release
on expiry, cancellation and full refund, the storefront's countdown and its query counts, admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from catalog.models import Product, Sku
from marketing import specials
from marketing.models import FlashSpecial, SpecialRedemption
from orders import pricing, services
from orders.models import Order
from orders.tests.conftest import make_sku, pay, place
from payments import services as payments
from payments.models import Refund

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


Status = SpecialRedemption.Status


def special_on(sku: Sku, *, price_fen: int = 300, cap: int = 10, per_buyer: int = 5, **kwargs) -> FlashSpecial:
    now = timezone.now()
    return FlashSpecial.objects.create(
        sku=sku, special_price_fen=price_fen, quantity_cap=cap, per_buyer_limit=per_buyer,
        starts_at=kwargs.pop("starts_at", now - timedelta(hours=1)),
        ends_at=kwargs.pop("ends_at", now + timedelta(hours=2)),
        **kwargs,
    )  # fmt: skip


@pytest.fixture
def sku(demo_shop):
    return make_sku(demo_shop.products["steam-wallet"], codes_count=30, price_fen=500)


def line_adjustments(quote, rule=specials.RULE):
    return [(a.amount_fen, a.funded_by, a.sku_id, a.ref) for a in quote.adjustments if a.rule == rule]


# -- the rule --------------------------------------------------------------------------------------------


def test_special_price_for_the_units_within_cap_and_limit_the_rest_at_list_price(sku):
    special = special_on(sku, price_fen=320, cap=10, per_buyer=3)
    quote = pricing.quote(lines=[(sku, 5)], buyer=None)
    # 3 units at ¥3.20, 2 at ¥5.00: (500 − 320) × 3 = 540 off
    assert line_adjustments(quote) == [(540, "merchant", sku.pk, str(special.pk))]
    assert quote.total_fen == 3 * 320 + 2 * 500
    FlashSpecial.objects.filter(pk=special.pk).update(sold=9)  # one left
    assert pricing.quote(lines=[(sku, 5)], buyer=None).total_fen == 320 + 4 * 500


def test_no_special_outside_the_window_or_when_inactive_or_sold_out(sku):
    now = timezone.now()
    special_on(sku, starts_at=now + timedelta(minutes=5), ends_at=now + timedelta(hours=1))
    special_on(sku, starts_at=now - timedelta(hours=2), ends_at=now - timedelta(seconds=1))
    special_on(sku, active=False)
    FlashSpecial.objects.filter(pk=special_on(sku, cap=2).pk).update(sold=2)
    assert pricing.quote(lines=[(sku, 1)], buyer=None).total_fen == 500


def test_platform_funded_special_and_the_cheapest_of_two(sku):
    special_on(sku, price_fen=400)
    cheaper = special_on(sku, price_fen=450 - 100, funded_by="platform")
    quote = pricing.quote(lines=[(sku, 1)], buyer=None)
    # platform-funded: within the platform's commission on the line (the demo merchant's rate)
    rate = sku.product.merchant.commission_rate
    room = int(500 * rate)
    [(amount, funded_by, _sku, ref)] = line_adjustments(quote)
    assert (funded_by, ref) == ("platform", str(cheaper.pk))
    assert amount == min(150, room)


def test_a_better_member_offer_wins_over_the_special_in_the_unit_price_group(sku, user):
    from decimal import Decimal

    from accounts.models import LoyaltyAccount, MemberLevel
    from catalog.models import LevelPrice

    merchant = sku.product.merchant
    merchant.commission_rate = Decimal("0.5")  # room for the platform-funded level price
    merchant.save(update_fields=["commission_rate"])
    level = MemberLevel.objects.create(name="金卡", threshold_fen=0)
    LevelPrice.objects.create(sku=sku, level=level, price_fen=250)
    LoyaltyAccount.objects.update_or_create(user=user, defaults={"level": level})
    special_on(sku, price_fen=300)
    quote = pricing.quote(lines=[(sku, 1)], buyer=user)
    assert [a.rule for a in quote.adjustments] == ["member_level"]
    assert quote.passed_over[0]["rule"] == specials.RULE


def redeem_priced(quote, *, email: str, buyer=None) -> Order:
    """Place an order priced by ``quote`` earlier (before another checkout changed what is left)."""
    from django.db import transaction

    with transaction.atomic():
        order = Order.objects.create(
            number=services.new_order_number(), email=email, buyer=buyer, subtotal_fen=quote.subtotal_fen,
            discount_fen=quote.discount_fen, total_fen=quote.total_fen, reserved_until=timezone.now(),
            idempotency_key=services.new_order_number(),
        )  # fmt: skip
        specials.redeem(order=order, quote=quote)
    return order


# -- placement and release ------------------------------------------------------------------------------


def test_placing_takes_the_units_and_records_the_buyer(sku, user):
    special = special_on(sku, cap=10, per_buyer=2)
    order = place(sku, 3, buyer=user, email=user.email).order
    special.refresh_from_db()
    assert special.sold == 2
    assert order.total_fen == 2 * 300 + 500
    redemption = SpecialRedemption.objects.get(order=order)
    assert (redemption.quantity, redemption.buyer_key, redemption.status) == (2, f"user:{user.pk}", Status.HELD)
    # the same buyer again: the limit is used, the list price applies
    again = place(sku, 1, buyer=user, email=user.email).order
    assert again.total_fen == 500


def test_guest_limit_counts_the_normalised_email(sku):
    special = special_on(sku, per_buyer=1)
    place(sku, 1, email="Guest@Example.com ")
    # priced without knowing the e-mail (e.g. the checkout page), placed with it: refused with the reason
    quote = pricing.quote(lines=[(sku, 1)], buyer=None)
    assert quote.total_fen == 300
    with pytest.raises(pricing.OfferUnavailable, match="already bought 1"):
        redeem_priced(quote, email="guest@example.com")
    special.refresh_from_db()
    assert special.sold == 1
    # placed through place_order the e-mail is known when pricing: the list price, no refusal
    assert place(sku, 1, email="GUEST@example.com").order.total_fen == 500


def test_sold_out_meanwhile_refuses_the_order_with_the_new_price(sku):
    special = special_on(sku, cap=1)
    quote = pricing.quote(lines=[(sku, 1)], buyer=None)
    FlashSpecial.objects.filter(pk=special.pk).update(sold=1)  # another buyer took it after pricing
    with pytest.raises(pricing.OfferUnavailable, match=r"sold out at the special price; the price is ¥5\.00"):
        redeem_priced(quote, email="late@example.com")
    assert not Order.objects.filter(email="late@example.com").exists()
    # through the checkout: the order is refused with that message
    FlashSpecial.objects.filter(pk=special.pk).update(sold=0)
    from unittest import mock

    with mock.patch.object(specials, "running", return_value={sku.pk: special}):  # priced while one was left…
        FlashSpecial.objects.filter(pk=special.pk).update(sold=1)  # …taken by another buyer meanwhile
        with pytest.raises(services.CheckoutError, match="sold out at the special price"):
            place(sku, 1)


def test_released_on_cancel_and_expiry_and_full_refund_not_partial(sku, user):
    special = special_on(sku, cap=10, per_buyer=10)
    cancelled = place(sku, 2).order
    expired = place(sku, 3).order
    paid_order = place(sku, 4, buyer=user, email=user.email).order
    special.refresh_from_db()
    assert special.sold == 9
    services.cancel_order(order=cancelled)
    Order.objects.filter(pk=expired.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))
    services.expire_overdue_orders()
    special.refresh_from_db()
    assert special.sold == 4
    pay(paid_order)
    assert SpecialRedemption.objects.get(order=paid_order).status == Status.USED
    paid_order.refresh_from_db()
    payments.refund_amount_by_operator(
        order=paid_order, amount_fen=100, note="part", actor=None, route=Refund.Route.WALLET
    )
    special.refresh_from_db()
    assert special.sold == 4  # a partial refund keeps them
    paid_order.refresh_from_db()
    payments.refund_amount_by_operator(
        order=paid_order, amount_fen=paid_order.total_fen - 100, note="rest", actor=None, route=Refund.Route.WALLET
    )
    special.refresh_from_db()
    assert special.sold == 0
    assert set(SpecialRedemption.objects.values_list("status", flat=True)) == {Status.RELEASED}


# -- storefront ------------------------------------------------------------------------------------------


def test_product_page_shows_price_and_countdown_then_sold_out(client, sku):
    client.cookies["django_language"] = "en"
    special = special_on(sku, price_fen=288, ends_at=timezone.now() + timedelta(hours=1, minutes=23, seconds=45))
    html = client.get(sku.product.get_absolute_url()).content.decode()
    assert "Flash special" in html and "¥2.88" in html
    assert 'data-countdown="50' in html and ">01:23:4" in html  # 5025 s, rendered on the server
    assert "js/countdown.js" in html and "<script>" not in html
    FlashSpecial.objects.filter(pk=special.pk).update(sold=special.quantity_cap)
    html = client.get(sku.product.get_absolute_url()).content.decode()
    assert "Sold out at the special price" in html and "¥2.88" not in html


def test_upcoming_special_says_starts_in_and_a_far_one_is_not_shown(client, sku):
    client.cookies["django_language"] = "en"
    now = timezone.now()
    far = special_on(sku, price_fen=111, starts_at=now + timedelta(days=3), ends_at=now + timedelta(days=4))
    html = client.get("/").content.decode()
    assert "¥1.11" not in html
    FlashSpecial.objects.filter(pk=far.pk).update(starts_at=now + timedelta(minutes=30))
    html = client.get("/").content.decode()
    assert "starts in" in html and "¥1.11" in html


def _count(client, url):
    """The page's queries in the steady state: a first request warms the promotions' cached snapshot
    (marketing/offers.py reads it at most once a minute)."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("url", ["/", "/c/game-cards/", "/search/?q=特价", "/p/extra-0/"])
def test_query_counts_stay_constant_with_many_specials(client, demo_shop, url):
    category = demo_shop.categories["game-cards"]

    def add(start, count):
        for n in range(start, start + count):
            product = Product.objects.create(
                merchant=demo_shop.merchant, category=category, title=f"特价商品 {n}", slug=f"extra-{n}",
                status=Product.Status.LISTED, is_featured=True,
            )  # fmt: skip
            for price in (1000, 2000):
                special_on(
                    Sku.objects.create(product=product, label=f"{price}", price_fen=price), price_fen=price - 100
                )

    add(0, 1)
    before = _count(client, url)
    add(1, 30)
    assert _count(client, url) == before
    assert "flash-special" in client.get(url).content.decode()


# -- admin -----------------------------------------------------------------------------------------------


def test_merchant_staff_see_only_their_specials_and_cannot_make_the_platform_pay(
    client, demo_shop, sku, merchant_staff, other_merchant_staff
):
    other_product = Product.objects.filter(merchant=demo_shop.other_merchant).first()
    other_sku = Sku.objects.create(product=other_product, label="x", price_fen=900)
    mine, theirs = special_on(sku), special_on(other_sku, price_fen=800)
    client.force_login(merchant_staff)
    listing = client.get("/admin/marketing/flashspecial/").content.decode()
    assert f"/admin/marketing/flashspecial/{mine.pk}/change/" in listing
    assert f"/admin/marketing/flashspecial/{theirs.pk}/change/" not in listing
    assert client.get(f"/admin/marketing/flashspecial/{theirs.pk}/change/").status_code == 404
    now = timezone.now()
    response = client.post(
        "/admin/marketing/flashspecial/add/",
        {
            "sku": sku.pk, "special_price_fen": 250, "starts_at_0": now.strftime("%Y-%m-%d"), "starts_at_1": "00:00:00",
            "ends_at_0": (now + timedelta(days=2)).strftime("%Y-%m-%d"), "ends_at_1": "00:00:00", "quantity_cap": 5,
            "per_buyer_limit": 1, "funded_by": "platform", "active": "on",
            "redemptions-TOTAL_FORMS": 0, "redemptions-INITIAL_FORMS": 0,
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    created = FlashSpecial.objects.get(special_price_fen=250)
    assert created.funded_by == "merchant"
    client.force_login(other_merchant_staff)
    assert client.get(f"/admin/marketing/flashspecial/{mine.pk}/change/").status_code == 404
    client.logout()
    assert client.get(f"/admin/marketing/flashspecial/{mine.pk}/change/").status_code == 302  # to the sign-in


# -- the checkout page -----------------------------------------------------------------------------------


def _shown(client) -> dict:
    from django.urls import reverse

    response = client.get(reverse("orders:checkout"))
    html = response.content.decode()
    import re

    return {
        "idempotency_key": response.context["form"]["idempotency_key"].value(),
        "shown_total_fen": re.search(r'name="shown_total_fen" value="(\d+)"', html).group(1),
    }


def test_sold_out_after_the_page_was_shown_refuses_and_shows_the_new_price(client, sku):
    from django.urls import reverse

    client.cookies["django_language"] = "en"
    special = special_on(sku, price_fen=300, cap=1)
    client.post(reverse("orders:cart_add"), {"sku": sku.pk, "quantity": 1})
    form = _shown(client)
    assert form["shown_total_fen"] == "300"
    FlashSpecial.objects.filter(pk=special.pk).update(sold=1)  # another buyer took the last one

    response = client.post(reverse("orders:checkout"), {**form, "email": "a@example.com"})

    assert response.status_code == 200 and not Order.objects.exists()
    html = response.content.decode()
    assert "The price changed while you were checking out: the total is now ¥5.00" in html
    assert 'name="shown_total_fen" value="500"' in html
    again = _shown(client)
    client.post(reverse("orders:checkout"), {**again, "email": "a@example.com"})
    assert Order.objects.get().total_fen == 500


def test_a_guest_whose_limit_is_used_sees_the_list_price_once_the_email_is_typed(client, sku):
    from django.urls import reverse

    special_on(sku, price_fen=300, per_buyer=1)
    place(sku, 1, email="again@example.com")
    client.post(reverse("orders:cart_add"), {"sku": sku.pk, "quantity": 1})
    form = _shown(client)
    assert form["shown_total_fen"] == "300"  # no e-mail yet: the special
    response = client.post(reverse("orders:checkout"), {**form, "email": "Again@example.com"})
    assert 'name="shown_total_fen" value="500"' in response.content.decode()  # refused, shown the list price
    client.post(reverse("orders:checkout"), {**_shown(client), "shown_total_fen": "500", "email": "again@example.com"})
    assert Order.objects.filter(email="again@example.com").order_by("-pk").first().total_fen == 500
