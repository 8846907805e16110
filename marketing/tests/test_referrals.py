"""Invite a friend: attribution, commission earned, booked, matured and clawed back, with the
ledger's invariants (check_ledger) holding after each step; the invite page and its card."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import wallet
from accounts.models import User, WalletEntry
from marketing import referrals
from marketing.models import Commission, Referral, ReferralProgram
from orders.tests.conftest import pay, place
from payments import ledger, settlement
from payments import services as payments
from payments.models import Refund
from payments.selectors import violations

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a-long-Passw0rd!"
Status = Commission.Status


@pytest.fixture
def program(db, demo_shop):
    """5% to the inviter, 2% to the inviter's inviter, a week's hold; the demo merchant pays 20%."""
    demo_shop.merchant.commission_rate = Decimal("0.20")
    demo_shop.merchant.save(update_fields=["commission_rate"])
    config = ReferralProgram.load()
    config.enabled, config.level1_rate, config.level2_rate = True, Decimal("0.05"), Decimal("0.02")
    config.cookie_days, config.hold_days = 30, 7
    config.save()
    return config


@pytest.fixture
def chain(db, program):
    """grand invited inviter, who invited buyer."""
    grand = User.objects.create_user(email="grand@example.com", password=PASSWORD)
    inviter = User.objects.create_user(email="inviter@example.com", password=PASSWORD)
    buyer = User.objects.create_user(email="friend@example.com", password=PASSWORD)
    Referral.objects.create(invitee=inviter, inviter=grand)
    Referral.objects.create(invitee=buyer, inviter=inviter, level2_inviter=grand)
    return grand, inviter, buyer


def buy(sku, buyer, quantity: int = 1):
    order = place(sku, quantity, buyer=buyer, email=buyer.email).order
    pay(order)
    order.refresh_from_db()
    assert order.status == order.Status.DELIVERED
    return order


def refund(order, amount_fen: int) -> None:
    made = payments.refund_amount_by_operator(
        order=order, amount_fen=amount_fen, note="test", actor=None, route=Refund.Route.WALLET
    )
    made.refresh_from_db()
    assert made.status == Refund.Status.SUCCEEDED
    order.refresh_from_db()


def ledger_ok() -> None:
    assert [str(v) for v in violations()] == []
    call_command("check_ledger")


def of(order, user) -> Commission:
    return Commission.objects.get(order=order, beneficiary=user)


def held(order, user) -> int:
    return ledger.balance(ledger.commission(user.pk), order_id=order.pk)


def platform(order) -> int:
    return ledger.balance(ledger.PLATFORM_FEE, order_id=order.pk)


def beat(now=None) -> int:
    """The two beat tasks in turn: payments splits delivered orders, marketing books and matures."""
    settlement.create_due_settlements()
    return referrals.mature_due(now=now)


def later(days: int = 8):
    return timezone.now() + timedelta(days=days)


# -- earned and booked ----------------------------------------------------------------------------------


def test_a_paid_order_of_an_invitee_earns_both_levels_pending_and_books_them_once_split(stocked_sku, chain):
    grand, inviter, buyer = chain
    order = buy(stocked_sku, buyer)  # ¥10.00; the platform's fee is ¥2.00
    assert (of(order, inviter).level, of(order, inviter).amount_fen) == (1, 50)
    assert (of(order, grand).level, of(order, grand).amount_fen) == (2, 20)
    assert {c.status for c in order.commissions.all()} == {Status.PENDING}

    beat()  # the beat: the split happens, the hold has not passed
    assert {(c.status, c.booked) for c in order.commissions.all()} == {(Status.PENDING, True)}
    assert (held(order, inviter), held(order, grand), platform(order)) == (50, 20, 200 - 70)
    assert wallet.balance_fen(inviter) == 0
    assert referrals.totals(inviter)["pending"] == 50
    ledger_ok()
    beat()  # again: nothing twice
    assert held(order, inviter) == 50
    ledger_ok()


def test_no_commission_without_a_referral_or_when_the_programme_is_off(stocked_sku, chain, user, program):
    _grand, _inviter, buyer = chain
    assert buy(stocked_sku, user).commissions.count() == 0
    program.enabled = False
    program.save()
    assert buy(stocked_sku, buyer).commissions.count() == 0


def test_commission_is_capped_at_the_platforms_share_of_the_order(stocked_sku, chain, demo_shop, program):
    grand, inviter, buyer = chain
    demo_shop.merchant.commission_rate = Decimal("0.06")  # the platform keeps ¥0.60 of ¥10
    demo_shop.merchant.save(update_fields=["commission_rate"])
    program.level1_rate = Decimal("0.05")
    program.level2_rate = Decimal("0.05")
    program.save()
    order = buy(stocked_sku, buyer)
    assert (of(order, inviter).amount_fen, of(order, grand).amount_fen) == (50, 10)
    beat()
    assert platform(order) == 0
    ledger_ok()
    # 25 fen back: the split returns round_half_up(1.5) = 2 fen of the platform's 60, the commissions
    # alone would keep 49 + 10 = 59 > 58; level 2 gives way so the platform's share stays at zero.
    refund(order, 25)
    assert (of(order, inviter).kept_fen, of(order, grand).kept_fen) == (49, 9)
    assert platform(order) == 0
    ledger_ok()


# -- matured ---------------------------------------------------------------------------------------------


def test_after_the_hold_commission_is_available_in_the_wallet(stocked_sku, chain):
    grand, inviter, buyer = chain
    order = buy(stocked_sku, buyer)
    beat()
    assert beat(now=later()) == 2
    assert {c.status for c in order.commissions.all()} == {Status.AVAILABLE}
    assert (wallet.balance_fen(inviter), wallet.balance_fen(grand)) == (50, 20)
    assert WalletEntry.objects.get(wallet__user=inviter).kind == WalletEntry.Kind.COMMISSION
    assert (held(order, inviter), platform(order)) == (0, 130)
    assert referrals.totals(inviter) == {"pending": 0, "available": 50, "clawed_back": 0, "owed": 0}
    ledger_ok()
    assert beat(now=later()) == 0
    assert wallet.balance_fen(inviter) == 50


# -- clawed back ----------------------------------------------------------------------------------------


def test_a_partial_refund_claws_back_pending_commission_in_proportion(stocked_sku, chain):
    grand, inviter, buyer = chain
    order = buy(stocked_sku, buyer, quantity=2)  # ¥20: 100 and 40 fen
    beat()
    refund(order, 700)  # 35% back
    assert (of(order, inviter).kept_fen, of(order, grand).kept_fen) == (65, 26)
    assert (held(order, inviter), held(order, grand)) == (65, 26)
    assert of(order, inviter).status == Status.PENDING
    ledger_ok()
    refund(order, 1300)  # the rest
    assert {(c.status, c.kept_fen) for c in order.commissions.all()} == {(Status.CLAWED_BACK, 0)}
    assert (held(order, inviter), held(order, grand), platform(order)) == (0, 0, 0)
    ledger_ok()
    assert beat(now=later()) == 0
    assert wallet.balance_fen(inviter) == 0


def test_a_refund_before_the_split_lowers_what_is_booked(stocked_sku, chain):
    _grand, inviter, buyer = chain
    order = buy(stocked_sku, buyer)
    assert not of(order, inviter).booked
    refund(order, 500)  # reverse_for_refund splits the order first, the claw-back books then reverses
    assert of(order, inviter).kept_fen == 25
    assert held(order, inviter) == 25
    ledger_ok()


def test_a_refund_after_availability_takes_it_from_the_wallet(stocked_sku, chain):
    grand, inviter, buyer = chain
    order = buy(stocked_sku, buyer)
    beat()
    beat(now=later())
    refund(order, 200)  # 20%
    assert (wallet.balance_fen(inviter), wallet.balance_fen(grand)) == (40, 16)
    assert of(order, inviter).status == Status.AVAILABLE
    ledger_ok()
    refund(order, 800)
    assert (wallet.balance_fen(inviter), wallet.balance_fen(grand)) == (0, 0)
    assert {c.status for c in order.commissions.all()} == {Status.CLAWED_BACK}
    assert platform(order) == 0
    ledger_ok()


def test_a_claw_back_the_wallet_cannot_pay_is_owed_and_netted_from_the_next_commission(stocked_sku, chain):
    _grand, inviter, buyer = chain
    first = buy(stocked_sku, buyer)
    beat()
    beat(now=later())
    wallet.debit(user=inviter, amount_fen=45, kind=WalletEntry.Kind.ADJUSTMENT, reference="spent-it")
    refund(first, 1000)
    assert wallet.balance_fen(inviter) == 0
    assert of(first, inviter).owed_fen == 45
    assert referrals.totals(inviter)["owed"] == 45
    ledger_ok()

    second = buy(stocked_sku, buyer)
    beat()
    beat(now=later())
    assert of(second, inviter).netted_fen == 45
    assert wallet.balance_fen(inviter) == 5
    assert of(first, inviter).owed_fen == 0
    ledger_ok()


# -- attribution ------------------------------------------------------------------------------------------


def sign_up(client: Client, email: str) -> User:
    response = client.post("/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    return User.objects.get(email=email)


def test_an_invite_link_attributes_the_sign_up_first_touch(program, chain):
    grand, inviter, _buyer = chain
    first, second = referrals.code_for(inviter).code, referrals.code_for(grand).code
    client = Client()
    client.get(f"/?invite={first.lower()}")
    assert referrals.COOKIE in client.cookies
    client.get(f"/?invite={second}")  # a later link does not take over
    newcomer = sign_up(client, "new@example.com")
    referral = Referral.objects.get(invitee=newcomer)
    assert (referral.inviter, referral.level2_inviter) == (inviter, grand)


def test_unknown_forged_or_own_codes_attribute_nothing(program, chain):
    _grand, inviter, _buyer = chain
    code = referrals.code_for(inviter).code
    own = Client()
    own.force_login(inviter)
    own.get(f"/?invite={code}")
    assert referrals.COOKIE not in own.cookies
    client = Client()
    client.get("/?invite=NOSUCH")
    assert referrals.COOKIE not in client.cookies
    client.cookies[referrals.COOKIE] = code  # unsigned: ignored
    newcomer = sign_up(client, "new@example.com")
    assert not Referral.objects.filter(invitee=newcomer).exists()


def test_no_attribution_after_the_window(program, chain, monkeypatch):
    _grand, inviter, _buyer = chain
    client = Client()
    client.get(f"/?invite={referrals.code_for(inviter).code}")
    program.cookie_days = 0
    program.save()
    newcomer = sign_up(client, "new@example.com")
    assert not Referral.objects.filter(invitee=newcomer).exists()


# -- the invite page -------------------------------------------------------------------------------------


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_invite_page_shows_link_code_masked_invitees_and_totals(stocked_sku, chain, django_assert_max_num_queries):
    grand, _inviter, buyer = chain
    browser = Client()
    browser.cookies["django_language"] = "en"
    browser.force_login(grand)
    code = referrals.code_for(grand).code
    with django_assert_max_num_queries(9):
        page = browser.get(reverse("accounts:invite"))
    text = text_of(page.content.decode())
    assert code in text and f"?invite={code}" in page.content.decode()
    assert "1 friend invited" in text and "i***@example.com" in text
    assert "inviter@example.com" not in text
    for i in range(5):
        Referral.objects.create(invitee=User.objects.create_user(email=f"f{i}@example.com"), inviter=grand)
    buy(stocked_sku, buyer)
    with django_assert_max_num_queries(9):
        page = browser.get(reverse("accounts:invite"))
    text = text_of(page.content.decode())
    assert "6 friends invited" in text and "¥0.20" in text
    qr = browser.get(reverse("accounts:invite_qr"))
    assert qr["Content-Type"] == "image/svg+xml" and b"<svg" in qr.content
    home = browser.get(reverse("accounts:overview"))
    assert reverse("accounts:invite") in home.content.decode()


def test_the_invite_page_and_qr_need_a_sign_in(program):
    for name in ("accounts:invite", "accounts:invite_qr"):
        response = Client().get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# -- admin --------------------------------------------------------------------------------------------------


def test_operators_edit_the_programme_and_merchant_staff_cannot(operator, merchant_staff, chain, stocked_sku):
    _grand, _inviter, buyer = chain
    buy(stocked_sku, buyer)
    admin = Client()
    admin.force_login(operator)
    opened = admin.get("/admin/marketing/referralprogram/", follow=True)
    assert opened.status_code == 200 and opened.redirect_chain[-1][0].endswith("/referralprogram/1/change/")
    for url in ("/admin/marketing/commission/", "/admin/marketing/referral/"):
        assert admin.get(url).status_code == 200
    assert admin.get("/admin/marketing/commission/add/").status_code == 403
    staff = Client()
    staff.force_login(merchant_staff)
    for url in ("/admin/marketing/referralprogram/1/change/", "/admin/marketing/commission/"):
        assert staff.get(url).status_code == 403
