"""The coupon wallet: claiming (领券), holders-only coupons at checkout, /me/coupons/ and its card,
the product page's strip, the checkout's picker, trial coupons (sign-up and list) and win-back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import User
from marketing import wallet
from marketing.models import Coupon, CouponGrant, CouponRedemption, WinBackProgramme
from orders import services
from orders.models import Order
from orders.tests.conftest import make_sku, pay, place
from orders.tests.test_views import checkout_form, count_queries

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-Passw0rd!"


@pytest.fixture(autouse=True)
def _english():
    """Services' messages in English (the shop's default is Chinese; pages take the cookie below)."""
    with translation.override("en"):
        yield


@pytest.fixture
def client():
    browser = Client()
    browser.cookies["django_language"] = "en"
    return browser


@pytest.fixture
def sku(demo_shop):
    # ¥100: the platform's commission leaves room for its coupons' discounts (orders/pricing.py).
    return make_sku(demo_shop.products["steam-wallet"], codes_count=10, price_fen=10_000)


def claimable(**fields) -> Coupon:
    values = {"code": "CLAIM5", "name": "five off", "amount_fen": 500, "claimable": True, "per_user_limit": None}
    return Coupon.objects.create(**{**values, **fields})


def shopper(email: str = "shopper@example.com") -> User:
    return User.objects.create_user(email=email, password=PASSWORD)


# --- claiming ---------------------------------------------------------------------------------------------
def test_a_user_claims_a_coupon_once_and_the_cap_holds():
    coupon = claimable(claim_limit=2)
    first, second, third = shopper("a@example.com"), shopper("b@example.com"), shopper("c@example.com")
    grant = wallet.claim(coupon, first)
    assert (grant.source, grant.user, grant.order) == ("claimed", first, None)
    with pytest.raises(wallet.ClaimRefused, match="already in your wallet"):
        wallet.claim(coupon, first)
    wallet.claim(coupon, second)
    with pytest.raises(wallet.ClaimRefused, match="All of these coupons have been claimed"):
        wallet.claim(coupon, third)
    coupon.refresh_from_db()
    assert coupon.claimed_count == 2
    assert CouponGrant.objects.filter(coupon=coupon).count() == 2


def test_ended_inactive_or_unclaimable_coupons_cannot_be_claimed():
    user = shopper()
    ended = claimable(code="OLD", ends_at=timezone.now() - timedelta(minutes=1))
    off = claimable(code="OFF", is_active=False)
    hidden = claimable(code="HIDDEN", claimable=False)
    for coupon in (ended, off, hidden):
        with pytest.raises(wallet.ClaimRefused, match="can no longer be claimed"):
            wallet.claim(coupon, user)
    assert not CouponGrant.objects.exists()


def test_claim_as_a_guest_goes_to_sign_in_and_back(client, sku):
    coupon = claimable()
    product_url = sku.product.get_absolute_url()
    response = client.post(reverse("marketing:claim_coupon", args=[coupon.pk]), {"next": product_url})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/") and "next=" in response["Location"]
    assert product_url.replace("/", "%2F") in response["Location"] or product_url in response["Location"]
    assert not CouponGrant.objects.exists()


def test_claim_view_grants_once_and_comes_back(client, sku):
    coupon = claimable()
    user = shopper()
    client.force_login(user)
    url = reverse("marketing:claim_coupon", args=[coupon.pk])
    product_url = sku.product.get_absolute_url()
    response = client.post(url, {"next": product_url}, follow=True)
    assert response.redirect_chain[-1][0] == product_url
    assert "Coupon claimed" in response.content.decode()
    response = client.post(url, {"next": product_url}, follow=True)
    assert "already in your wallet" in response.content.decode()
    assert CouponGrant.objects.filter(user=user, coupon=coupon).count() == 1
    assert client.get(url).status_code == 405  # POST only
    # An outside address is not followed.
    assert client.post(url, {"next": "https://evil.example/"})["Location"] == reverse("accounts:coupons")


def test_only_claimable_coupons_can_be_claimed_by_id(client):
    hidden = Coupon.objects.create(code="SECRET", name="secret", amount_fen=100)
    client.force_login(shopper())
    assert client.post(reverse("marketing:claim_coupon", args=[hidden.pk])).status_code == 404
    assert client.post(reverse("marketing:claim_coupon", args=[999_999])).status_code == 404
    assert not CouponGrant.objects.exists()


# --- holders-only coupons at checkout ---------------------------------------------------------------------
def test_a_holders_only_coupon_is_refused_without_a_grant_and_used_with_one(sku):
    coupon = Coupon.objects.create(code="TRIAL", name="trial", amount_fen=300, holders_only=True, per_user_limit=1)
    buyer, stranger = shopper("holder@example.com"), shopper("stranger@example.com")
    with pytest.raises(services.CheckoutError, match="only for those who hold it"):
        place(sku, buyer=stranger, email=stranger.email, coupon_code="TRIAL")
    with pytest.raises(services.CheckoutError, match="only for those who received it"):
        place(sku, email="guest@example.com", coupon_code="TRIAL")
    grant = wallet.grant(coupon, buyer, source="trial")
    assert wallet.grant(coupon, buyer, source="trial") is None  # once per user
    order = place(sku, buyer=buyer, email=buyer.email, coupon_code="TRIAL").order
    assert order.discount_fen == 300
    grant.refresh_from_db()
    assert grant.order == order
    # The order expires unpaid: the coupon is back in the wallet.
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))
    assert services.expire_overdue_orders() == 1
    grant.refresh_from_db()
    assert grant.order is None
    assert CouponRedemption.objects.get(order=order).status == "released"


def test_an_expired_grant_is_not_usable(sku):
    coupon = Coupon.objects.create(
        code="SHORT", name="short", amount_fen=300, holders_only=True, grant_valid_days=3, per_user_limit=None
    )
    buyer = shopper()
    grant = wallet.grant(coupon, buyer, source="operator")
    assert grant.expires_at is not None
    CouponGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(services.CheckoutError, match="only for those who hold it"):
        place(sku, buyer=buyer, email=buyer.email, coupon_code="SHORT")


def test_a_claimed_coupon_shows_as_used_after_the_order(sku):
    coupon = claimable(per_user_limit=1)
    buyer = shopper()
    wallet.claim(coupon, buyer)
    order = place(sku, buyer=buyer, email=buyer.email, coupon_code="CLAIM5").order
    pay(order)
    found = wallet.wallet_of(buyer)
    assert ([g.coupon for g in found.used], found.usable, found.expired) == ([coupon], [], [])


# --- the wallet page --------------------------------------------------------------------------------------
def test_the_wallet_sorts_coupons_into_tabs_and_shows_only_the_users_own(client, sku):
    buyer, other = shopper(), shopper("other@example.com")
    usable = claimable(code="USABLE", name="Usable one", min_spend_fen=2_000)
    expired = claimable(code="GONE", name="Gone one", ends_at=timezone.now() + timedelta(minutes=5))
    used = claimable(code="USEDUP", name="Used one", kind="percent", percent=15, amount_fen=0, max_discount_fen=500)
    theirs = claimable(code="THEIRS", name="Someone else's")
    for coupon in (usable, expired, used):
        wallet.claim(coupon, buyer)
    wallet.claim(theirs, other)
    place(sku, buyer=buyer, email=buyer.email, coupon_code="USEDUP")
    Coupon.objects.filter(pk=expired.pk).update(ends_at=timezone.now() - timedelta(minutes=1))

    client.force_login(buyer)
    url = reverse("accounts:coupons")
    page = client.get(url)
    html = page.content.decode()
    assert "Usable one" in html and "¥5.00 off" in html and "on a spend of ¥20.00" in html
    assert "Gone one" not in html and "Used one" not in html and "Someone else" not in html
    assert page.context["counts"] == {"usable": 1, "used": 1, "expired": 1}
    used_page = client.get(url + "?tab=used").content.decode()
    assert "Used one" in used_page and "15% off" in used_page and "up to ¥5.00" in used_page
    assert "Gone one" in client.get(url + "?tab=expired").content.decode()
    assert "Someone else" not in used_page
    # Constant queries however many coupons.
    before = count_queries(client, url)
    for index in range(5):
        wallet.claim(claimable(code=f"MORE{index}", scope="product", product=sku.product), buyer)
    assert count_queries(client, url) == before


def test_the_wallet_empty_states_and_sign_in(client):
    url = reverse("accounts:coupons")
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    client.force_login(shopper())
    assert "No coupons to use yet" in client.get(url).content.decode()
    assert "You have not used a coupon yet" in client.get(url + "?tab=used").content.decode()
    assert "No expired coupons" in client.get(url + "?tab=expired").content.decode()


def test_the_user_center_card_counts_usable_coupons(client):
    buyer = shopper()
    wallet.claim(claimable(), buyer)
    client.force_login(buyer)
    page = client.get(reverse("accounts:overview")).content.decode()
    assert 'id="me-coupons">1<' in page and reverse("accounts:coupons") in page


# --- the product page's strip -----------------------------------------------------------------------------
def test_the_product_page_shows_coupons_that_apply_with_their_state(client, sku, demo_shop):
    product = sku.product
    other_product = demo_shop.products["honor-of-kings"]
    claimable(code="ALLGOODS", name="all")
    claimable(code="THISONE", name="this", scope="product", product=product, amount_fen=200)
    claimable(code="NOTHIS", name="not this", scope="product", product=other_product, amount_fen=300)
    claimable(code="FULL", name="full", amount_fen=100, claim_limit=0)
    url = product.get_absolute_url()
    html = client.get(url).content.decode()
    assert html.count("data-coupon=") == 3
    assert "¥5.00 off" in html and "¥2.00 off" in html and "¥3.00 off" not in html
    assert 'data-claim="sold_out"' in html and html.count('data-claim="claim"') == 2

    buyer = shopper()
    client.force_login(buyer)
    client.post(reverse("marketing:claim_coupon", args=[Coupon.objects.get(code="ALLGOODS").pk]))
    html = client.get(url).content.decode()
    assert html.count('data-claim="claimed"') == 1 and html.count('data-claim="claim"') == 1


def test_the_product_page_queries_do_not_grow_with_coupons(client, sku):
    client.force_login(shopper())
    url = sku.product.get_absolute_url()
    claimable(code="FIRST")
    before = count_queries(client, url)
    for index in range(4):
        claimable(code=f"EXTRA{index}", scope="sku", sku=sku, amount_fen=100 + index)
    assert count_queries(client, url) == before
    assert client.get(url).content.decode().count("data-coupon=") == 5


# --- the checkout's picker --------------------------------------------------------------------------------
def test_a_signed_in_buyer_picks_a_wallet_coupon_at_checkout(client, sku, demo_shop):
    buyer = shopper()
    coupon = Coupon.objects.create(code="PICKME", name="Picked", amount_fen=150, holders_only=True)
    wallet.grant(coupon, buyer, source="operator")
    elsewhere = Coupon.objects.create(
        code="ELSEWHERE", name="Elsewhere", amount_fen=150, scope="product",
        product=demo_shop.products["honor-of-kings"],
    )  # fmt: skip
    wallet.grant(elsewhere, buyer, source="operator")
    client.force_login(buyer)
    client.post(reverse("orders:cart_add"), {"sku": sku.pk, "quantity": 1})
    page = client.get(reverse("orders:checkout")).content.decode()
    assert 'id="wallet-picker"' in page and "Picked" in page and "Elsewhere" not in page
    page = client.post(reverse("orders:checkout"), {"coupon_code": "PICKME", "update": "coupon-apply"})
    assert page.status_code == 200 and page.context["quote"].total_fen == 9_850
    assert "Coupon applied: ¥1.50 off." in page.content.decode()
    assert not Order.objects.exists()
    client.post(reverse("orders:checkout"), {**checkout_form(client), "email": buyer.email})
    order = Order.objects.get()
    assert (order.discount_fen, CouponGrant.objects.get(coupon=coupon).order) == (150, order)


# --- trial coupons ----------------------------------------------------------------------------------------
def test_trial_coupons_are_granted_at_sign_up(client):
    trial = Coupon.objects.create(code="WELCOME", name="welcome", amount_fen=500, trial_for_new_users=True,
                                  holders_only=True, grant_valid_days=7)  # fmt: skip
    Coupon.objects.create(code="ENDEDTRIAL", name="old", amount_fen=500, trial_for_new_users=True, is_active=False)
    form = {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD}
    response = client.post("/accounts/signup/", form)
    assert response.status_code == 302
    grant = CouponGrant.objects.get(user__email="new@example.com")
    assert (grant.coupon, grant.source) == (trial, "trial")
    assert timedelta(days=6, hours=23) < grant.expires_at - timezone.now() <= timedelta(days=7)


def test_an_operator_grants_a_coupon_to_a_list_and_sees_the_unknown_ones(client, operator):
    coupon = Coupon.objects.create(code="GIFT", name="gift", amount_fen=500, holders_only=True)
    known = shopper("known@example.com")
    phoned = User.objects.create_user(email="phone@example.com", password=PASSWORD, phone="+8613800138000")
    wallet.grant(coupon, shopper("had@example.com"), source="trial")
    client.force_login(operator)
    url = reverse("admin:marketing_coupon_grant", args=[coupon.pk])
    users = "KNOWN@example.com\n13800138000, had@example.com; nobody@example.com\n13900000000\nknown@example.com"
    response = client.post(url, {"users": users})
    assert response.status_code == 200
    html = response.content.decode()
    assert "nobody@example.com" in html and "13900000000" in html
    assert response.context["result"].unknown == ["nobody@example.com", "13900000000"]
    assert response.context["result"].already == ["had@example.com"]
    assert response.context["form"].initial["users"] == "nobody@example.com\n13900000000"
    assert set(CouponGrant.objects.filter(coupon=coupon).values_list("user__email", flat=True)) == {
        "known@example.com",
        "phone@example.com",
        "had@example.com",
    }
    assert CouponGrant.objects.get(coupon=coupon, user=phoned).source == "trial"
    assert CouponGrant.objects.get(coupon=coupon, user=known).source == "trial"
    # Everyone known: straight to the list of grants.
    assert client.post(url, {"users": "known@example.com"}).status_code == 302


def test_only_operators_grant_to_a_list(client, demo_shop, merchant_staff, other_merchant_staff, operator):
    """Merchant staff never see which addresses have accounts, not even for their own coupons."""
    coupon = Coupon.objects.create(code="MINE", name="mine", amount_fen=100, funded_by="merchant",
                                   merchant=demo_shop.merchant)  # fmt: skip
    url = reverse("admin:marketing_coupon_grant", args=[coupon.pk])
    for staff in (other_merchant_staff, merchant_staff):
        client.force_login(staff)
        assert client.post(url, {"users": "buyer@example.com"}).status_code == 403
        changelist = client.get(reverse("admin:marketing_coupon_changelist"))
        assert "grant_to_users" not in str(changelist.context["action_form"].fields["action"].choices)
    client.logout()
    assert client.get(url).status_code == 302  # to the admin's sign-in
    client.force_login(operator)
    assert client.get(url).status_code == 200
    assert not CouponGrant.objects.exists()


# --- win-back ---------------------------------------------------------------------------------------------
@pytest.fixture
def lapsed(sku, demo_shop):
    """A buyer whose only paid order is 100 days old (zh-hans), one opted in to SMS (en), one who never bought."""
    mail.outbox.clear()
    quiet = User.objects.create_user(email="quiet@example.com", password=PASSWORD, nickname="静静")
    texted = User.objects.create_user(
        email="texted@example.com", password=PASSWORD, phone="+8613800138001", phone_verified=True,
        notify_promotions_sms=True,
    )  # fmt: skip
    shopper("never@example.com")
    for user, language in ((quiet, "zh-hans"), (texted, "en")):
        order = place(sku, buyer=user, email=user.email).order
        pay(order)
        Order.objects.filter(pk=order.pk).update(paid_at=timezone.now() - timedelta(days=100), language=language)
    mail.outbox.clear()
    return quiet, texted


def test_win_back_grants_once_per_period_and_tells_the_user(lapsed, sms_outbox, settings):
    coupon = Coupon.objects.create(code="MISSYOU", name="miss you", amount_fen=800, holders_only=True,
                                   grant_valid_days=14, per_user_limit=None)  # fmt: skip
    programme = WinBackProgramme.objects.create(name="90 days", idle_days=60, coupon=coupon, period_days=90)
    WinBackProgramme.objects.create(name="off", idle_days=1, coupon=coupon, enabled=False)

    assert wallet.win_back() == 2
    assert set(CouponGrant.objects.filter(programme=programme).values_list("user__email", flat=True)) == {
        "quiet@example.com",
        "texted@example.com",
    }
    by_to = {message.to[0]: message for message in mail.outbox}
    assert set(by_to) == {"quiet@example.com", "texted@example.com"}
    assert "¥8.00" in by_to["quiet@example.com"].subject and "优惠券" in by_to["quiet@example.com"].subject
    assert "A coupon for you" in by_to["texted@example.com"].subject
    assert "/me/coupons/" in by_to["texted@example.com"].body
    # SMS only to the one who opted in (with a verified number).
    assert [m["template"] for m in sms_outbox("+8613800138001")] == ["coupon"]
    assert sms_outbox("+8613800138001")[0]["params"]["coupon"] == "¥8.00 off"
    assert len(sms_outbox()) == 1

    # Again the same day, and 89 days later: nothing more. After the period: once more.
    assert wallet.win_back() == 0
    assert wallet.win_back(now=timezone.now() + timedelta(days=89)) == 0
    assert wallet.win_back(now=timezone.now() + timedelta(days=91)) == 2
    assert CouponGrant.objects.filter(programme=programme).count() == 4


def test_a_buyer_who_came_back_is_not_won_back(lapsed, sku):
    quiet, texted = lapsed
    coupon = Coupon.objects.create(code="BACK", name="back", amount_fen=800, holders_only=True)
    WinBackProgramme.objects.create(name="p", idle_days=60, coupon=coupon, period_days=90)
    pay(place(sku, buyer=quiet, email=quiet.email).order)  # bought today
    assert wallet.win_back() == 1
    assert CouponGrant.objects.get().user == texted


def test_win_back_redemptions_are_counted_per_programme(client, operator, lapsed, sku):
    quiet, _texted = lapsed
    coupon = Coupon.objects.create(code="COMEBACK", name="comeback", amount_fen=100, holders_only=True,
                                   per_user_limit=None)  # fmt: skip
    programme = WinBackProgramme.objects.create(name="Come back", idle_days=60, coupon=coupon, period_days=90)
    wallet.win_back()
    pay(place(sku, buyer=quiet, email=quiet.email, coupon_code="COMEBACK").order)
    assert wallet.redemptions_of(programme) == 1
    client.force_login(operator)
    page = client.get(reverse("admin:marketing_winbackprogramme_changelist"))
    assert page.status_code == 200
    row = page.context["cl"].result_list[0]
    assert (row.granted_count, row.redeemed_count) == (2, 1)


def test_the_win_back_task_is_scheduled(settings):
    from marketing import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["marketing.win_back"]
    assert entry["task"] == "marketing.tasks.win_back" == tasks.win_back.name
