"""Commission withdrawal: what may be withdrawn, the fee, the hold in wallet and ledger, rejection,
the Alipay transfer (through the SDK against a fake gateway that verifies our RSA2 signature and
signs its answers), failures and retries that never pay twice, offline payment, the invite page's
form and history, the admin actions and who may see what; commission rates per member level; the
invite link from SITE_URL. ``check_ledger`` passes after every step."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import ThreadingHTTPServer

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from accounts import wallet
from accounts.models import LoyaltyAccount, MemberLevel, User, WalletEntry
from marketing import referrals, withdrawals
from marketing.models import Commission, LevelCommissionRate, Referral, ReferralProgram, Withdrawal
from marketing.tests.test_referrals import beat, buy, later, ledger_ok, text_of
from payments import ledger
from payments.tests.conftest import FakeAlipay, _AlipayHandler, configure_alipay, keyring  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a-long-Passw0rd!"
Status = Withdrawal.Status
TRANSFER = "alipay.fund.trans.uni.transfer"


# -- a fake Alipay that transfers ----------------------------------------------------------------------


@dataclass
class FakeTransfers(FakeAlipay):
    """ "Alipay" for ``alipay.fund.trans.uni.transfer``: idempotent by out_biz_no as Alipay is (an
    identical request answers with the first one's result), ``moved`` lists every real transfer."""

    moved: list = field(default_factory=list)
    done: dict = field(default_factory=dict)  # out_biz_no -> order_id
    refuse: dict = field(default_factory=dict)  # out_biz_no -> sub_code
    lose_answer: set = field(default_factory=set)  # transfer, then answer "system busy" (answer lost)
    already_answer: str = ""  # answer a repeat with this sub_code instead of the first result

    def answer(self, method: str, biz: dict) -> dict:
        if method != TRANSFER:
            return super().answer(method, biz)
        self.calls.append((method, biz))
        if method in self.busy:
            return {"code": "40004", "msg": "Business Failed", "sub_code": "SYSTEM_ERROR", "sub_msg": "系统繁忙"}
        no = biz["out_biz_no"]
        if no in self.refuse:
            return {"code": "40004", "msg": "Business Failed", "sub_code": self.refuse[no], "sub_msg": "收款账号不存在"}
        if no in self.done:
            if self.already_answer:
                return {"code": "40004", "msg": "Business Failed", "sub_code": self.already_answer}
            return {"code": "10000", "msg": "Success", "out_biz_no": no, "order_id": self.done[no], "status": "SUCCESS"}
        self.done[no] = f"2024{secrets.randbelow(10**20):020d}"
        self.moved.append((no, biz["trans_amount"], biz["payee_info"]["identity"], biz["payee_info"]["name"]))
        if no in self.lose_answer:
            self.lose_answer.discard(no)
            return {"code": "40004", "msg": "Business Failed", "sub_code": "SYSTEM_ERROR", "sub_msg": "系统繁忙"}
        return {"code": "10000", "msg": "Success", "out_biz_no": no, "order_id": self.done[no], "status": "SUCCESS"}


@pytest.fixture
def alipay(settings, tmp_path, keyring):  # noqa: F811
    configure_alipay(settings, tmp_path, keyring)
    fake = FakeTransfers(key=keyring.alipay_gateway, app_public_key=keyring.alipay_app.public_key())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AlipayHandler)
    server.fake = fake
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = settings.ALIPAY_GATEWAY_URL = f"http://127.0.0.1:{server.server_port}/gateway.do"
    yield fake
    server.shutdown()
    server.server_close()


# -- people with commission ----------------------------------------------------------------------------


@pytest.fixture
def program(db, demo_shop):
    """15% to the inviter, 2% to the inviter's inviter (within the merchant's 20%), ¥1.00 minimum,
    a fee of 1% + ¥0.05, at least ¥0.10."""
    demo_shop.merchant.commission_rate = Decimal("0.20")
    demo_shop.merchant.save(update_fields=["commission_rate"])
    config = ReferralProgram.load()
    config.enabled, config.level1_rate, config.level2_rate = True, Decimal("0.15"), Decimal("0.02")
    config.hold_days, config.min_withdrawal_fen = 7, 100
    config.withdrawal_fee_percent, config.withdrawal_fee_fixed_fen, config.withdrawal_fee_min_fen = Decimal("1"), 5, 10
    config.save()
    return config


@pytest.fixture
def chain(db, program):
    grand = User.objects.create_user(email="grand@example.com", password=PASSWORD)
    inviter = User.objects.create_user(email="inviter@example.com", password=PASSWORD)
    buyer = User.objects.create_user(email="friend@example.com", password=PASSWORD)
    Referral.objects.create(invitee=inviter, inviter=grand)
    Referral.objects.create(invitee=buyer, inviter=inviter, level2_inviter=grand)
    return grand, inviter, buyer


def earn(sku, chain, orders: int = 2) -> User:
    """The inviter's commission on ``orders`` ¥10 orders (¥1.50 each), available in the wallet."""
    _grand, inviter, buyer = chain
    for _ in range(orders):
        buy(sku, buyer)
    beat(now=later())
    assert wallet.balance_fen(inviter) == 150 * orders
    return inviter


def ask(user, amount_fen: int, key: str | None = None) -> Withdrawal:
    return withdrawals.request(
        user=user,
        amount_fen=amount_fen,
        alipay_account="13800000000",
        real_name="张三",
        key=key or withdrawals.new_key(),
    )


def held() -> int:
    return ledger.balance(ledger.WITHDRAWALS_HELD)


# -- arithmetic ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "percent", "fixed", "minimum", "fee"),
    [
        (10_000, "1", 5, 10, 105),  # 1% of ¥100 + ¥0.05
        (1_000, "1", 5, 10, 15),
        (100, "1", 5, 10, 10),  # 1 + 5 = 6 < the minimum 10
        (150, "1.5", 0, 0, 2),  # 2.25 rounds half up to 2
        (50, "1", 0, 0, 1),  # 0.5 rounds half up to 1
        (12_345, "0", 0, 0, 0),
    ],
)
def test_the_fee_in_fen(amount, percent, fixed, minimum, fee):
    program = ReferralProgram(withdrawal_fee_percent=Decimal(percent), withdrawal_fee_fixed_fen=fixed,
                              withdrawal_fee_min_fen=minimum)  # fmt: skip
    assert withdrawals.fee_fen(amount, program) == fee


def test_withdrawable_is_commission_less_withdrawals_capped_by_the_balance(stocked_sku, chain):
    inviter = earn(stocked_sku, chain)  # ¥3.00 of commission
    wallet.credit(user=inviter, amount_fen=1_000, kind=WalletEntry.Kind.TOP_UP, reference="t1")
    assert withdrawals.summary(inviter).withdrawable_fen == 300  # a top-up is not commission
    first = ask(inviter, 120)
    assert (first.amount_fen, first.fee_fen, first.payee_fen) == (120, 10, 110)
    assert withdrawals.summary(inviter).withdrawable_fen == 180
    wallet.debit(user=inviter, amount_fen=1_100, kind=WalletEntry.Kind.PAYMENT, reference="p1")  # spent on orders
    summary = withdrawals.summary(inviter)
    assert (summary.balance_fen, summary.withdrawable_fen) == (80, 80)  # the wallet holds less than 180
    with pytest.raises(withdrawals.WithdrawalError):
        ask(inviter, 100)
    ledger_ok()


def test_below_the_minimum_more_than_available_or_a_fee_taking_everything_is_refused(stocked_sku, chain, program):
    inviter = earn(stocked_sku, chain)
    for amount in (99, 301):
        with pytest.raises(withdrawals.WithdrawalError):
            ask(inviter, amount)
    program.withdrawal_fee_min_fen = 200
    program.save()
    with pytest.raises(withdrawals.WithdrawalError):
        ask(inviter, 150)
    assert Withdrawal.objects.count() == 0 and wallet.balance_fen(inviter) == 300
    ledger_ok()


# -- request, reject, pay ----------------------------------------------------------------------------------


def test_a_request_holds_the_amount_at_once_and_the_same_key_is_one_request(stocked_sku, chain):
    inviter = earn(stocked_sku, chain)
    key = withdrawals.new_key()
    first = ask(inviter, 200, key=key)
    again = ask(inviter, 200, key=key)  # a double click
    assert again.pk == first.pk and Withdrawal.objects.count() == 1
    assert wallet.balance_fen(inviter) == 100 and held() == 200
    assert WalletEntry.objects.get(kind=WalletEntry.Kind.WITHDRAWAL, reference=first.out_biz_no).amount_fen == -200
    with pytest.raises(Exception, match="withdrawal_once_per_key"):  # the database itself keeps one
        Withdrawal.objects.create(user=inviter, request_key=key, amount_fen=100, alipay_account="a", real_name="b")
    ledger_ok()


def test_a_rejected_request_returns_the_amount(stocked_sku, chain, operator):
    inviter = earn(stocked_sku, chain)
    asked = ask(inviter, 200)
    with pytest.raises(withdrawals.WithdrawalError):
        withdrawals.reject(withdrawal=asked, reason=" ", actor=operator)
    withdrawals.reject(withdrawal=asked, reason="实名不符", actor=operator)
    asked.refresh_from_db()
    assert (asked.status, asked.reason, asked.decided_by) == (Status.REJECTED, "实名不符", operator)
    assert wallet.balance_fen(inviter) == 300 and held() == 0
    assert withdrawals.summary(inviter).withdrawable_fen == 300
    with pytest.raises(withdrawals.WithdrawalError):
        withdrawals.reject(withdrawal=asked, reason="again", actor=operator)
    ledger_ok()


def test_approval_pays_by_alipay_transfer_through_the_signed_sdk_request(stocked_sku, chain, operator, alipay):
    inviter = earn(stocked_sku, chain)
    asked = ask(inviter, 250)  # fee: max(10, 3 + 5) = 10; the payee gets ¥2.40
    withdrawals.approve(withdrawal=asked, actor=operator)  # the Celery task runs on commit (eager)
    asked.refresh_from_db()
    assert asked.status == Status.PAID and asked.method == Withdrawal.Method.ALIPAY and asked.gateway_order_id
    # The fake gateway answers only requests whose RSA2 signature verifies with our app's public key.
    [(method, biz)] = alipay.calls
    assert method == TRANSFER
    assert biz["out_biz_no"] == asked.out_biz_no == f"WD{asked.pk:010d}"
    assert biz["trans_amount"] == "2.40" and isinstance(biz["trans_amount"], str)
    assert biz["product_code"] == "TRANS_ACCOUNT_NO_PWD" and biz["biz_scene"] == "DIRECT_TRANSFER"
    assert biz["payee_info"] == {"identity": "13800000000", "identity_type": "ALIPAY_LOGON_ID", "name": "张三"}
    assert held() == 0 and ledger.balance(ledger.WITHDRAWN) == 240 and ledger.balance(ledger.WITHDRAWAL_FEES) == 10
    assert withdrawals.summary(inviter).withdrawn_fen == 250 and wallet.balance_fen(inviter) == 50
    withdrawals.pay(withdrawal_id=asked.pk)  # the task again: nothing
    assert len(alipay.moved) == 1
    ledger_ok()


def test_a_refused_transfer_is_failed_with_the_error_then_rejected_or_retried(stocked_sku, chain, operator, alipay):
    inviter = earn(stocked_sku, chain)
    asked = ask(inviter, 200)
    alipay.refuse[asked.out_biz_no] = "PAYEE_NOT_EXIST"
    withdrawals.approve(withdrawal=asked, actor=operator)
    asked.refresh_from_db()
    assert asked.status == Status.FAILED and "PAYEE_NOT_EXIST" in asked.last_error and not asked.outcome_unknown
    assert held() == 200 and alipay.moved == []
    ledger_ok()
    del alipay.refuse[asked.out_biz_no]  # the user fixed the account with the operator: retry
    withdrawals.approve(withdrawal=asked, actor=operator)
    asked.refresh_from_db()
    assert asked.status == Status.PAID and asked.attempts == 2 and asked.last_error == ""
    assert [m[0] for m in alipay.moved] == [asked.out_biz_no]
    ledger_ok()


def test_a_lost_answer_is_retried_with_the_same_out_biz_no_and_pays_once(stocked_sku, chain, operator, alipay):
    inviter = earn(stocked_sku, chain)
    asked = ask(inviter, 200)
    alipay.lose_answer.add(asked.out_biz_no)  # Alipay paid, the answer was "system busy"
    alipay.busy.add(TRANSFER)  # and stays busy through the task's retries
    withdrawals.approve(withdrawal=asked, actor=operator)
    asked.refresh_from_db()
    assert asked.status == Status.FAILED and asked.outcome_unknown
    # The money may have moved: no rejection and no offline payment, only a retry.
    with pytest.raises(withdrawals.WithdrawalError):
        withdrawals.reject(withdrawal=asked, reason="x", actor=operator)
    with pytest.raises(withdrawals.WithdrawalError):
        withdrawals.mark_paid_offline(withdrawal=asked, reference="x", actor=operator)
    ledger_ok()
    alipay.busy.clear()
    withdrawals.approve(withdrawal=asked, actor=operator)
    asked.refresh_from_db()
    assert asked.status == Status.PAID
    outs = {biz["out_biz_no"] for method, biz in alipay.calls if method == TRANSFER}
    assert outs == {asked.out_biz_no} and len(alipay.moved) == 1  # sent several times, paid once
    assert ledger.balance(ledger.WITHDRAWN) == 190
    ledger_ok()


def test_an_already_succeeded_answer_counts_as_paid(stocked_sku, chain, operator, alipay):
    inviter = earn(stocked_sku, chain)
    asked = ask(inviter, 200)
    alipay.lose_answer.add(asked.out_biz_no)
    alipay.already_answer = "ORDER_ALREADY_SUCCESS"
    withdrawals.approve(withdrawal=asked, actor=operator)  # lost answer, then the retry hears "already"
    asked.refresh_from_db()
    assert asked.status == Status.PAID and len(alipay.moved) == 1
    ledger_ok()


def test_marked_paid_offline_with_a_reference(stocked_sku, chain, operator):
    inviter = earn(stocked_sku, chain)
    asked = ask(inviter, 300)
    with pytest.raises(withdrawals.WithdrawalError):
        withdrawals.mark_paid_offline(withdrawal=asked, reference="", actor=operator)
    withdrawals.mark_paid_offline(withdrawal=asked, reference="BANK-778", actor=operator)
    asked.refresh_from_db()
    assert (asked.status, asked.method, asked.offline_reference) == (Status.PAID, "offline", "BANK-778")
    assert wallet.balance_fen(inviter) == 0 and held() == 0 and ledger.balance(ledger.WITHDRAWAL_FEES) == 10
    with pytest.raises(withdrawals.WithdrawalError):
        withdrawals.reject(withdrawal=asked, reason="late", actor=operator)
    ledger_ok()


def test_check_ledger_notices_a_withdrawal_that_does_not_match(stocked_sku, chain):
    inviter = earn(stocked_sku, chain)
    asked = ask(inviter, 200)
    Withdrawal.objects.filter(pk=asked.pk).update(status=Status.PAID)  # paid without its posting
    from payments.selectors import violations

    assert any(v.name == "withdrawal_mismatch" for v in violations())


# -- rates per member level ---------------------------------------------------------------------------------


def test_the_inviters_member_level_overrides_the_rates(stocked_sku, chain):
    grand, inviter, buyer = chain
    gold = MemberLevel.objects.create(name="金卡", threshold_fen=10**9)
    LevelCommissionRate.objects.create(level=gold, level1_rate=Decimal("0.123"), level2_rate=Decimal("0.005"))
    LoyaltyAccount.objects.update_or_create(user=inviter, defaults={"level": gold})
    program = ReferralProgram.load()
    assert referrals.rate_for(program, beneficiary_id=inviter.pk, level=1) == Decimal("0.123")
    assert referrals.rate_for(program, beneficiary_id=grand.pk, level=2) == Decimal("0.02")  # no level: programme's
    order = buy(stocked_sku, buyer)  # ¥10.00
    made = {c.level: (c.beneficiary_id, c.rate, c.amount_fen) for c in Commission.objects.filter(order=order)}
    assert made[1] == (inviter.pk, Decimal("0.1230"), 123)  # round_half_up(1000 × 0.123)
    assert made[2] == (grand.pk, Decimal("0.0200"), 20)
    LoyaltyAccount.objects.update_or_create(user=grand, defaults={"level": gold})
    order = buy(stocked_sku, buyer)
    made = {c.level: c.amount_fen for c in Commission.objects.filter(order=order)}
    assert made == {1: 123, 2: 5}  # 1000 × 0.005
    ledger_ok()


def test_rates_of_levels_are_operators_only_in_admin(operator, merchant_staff):
    admin = Client()
    admin.force_login(operator)
    assert admin.get("/admin/marketing/levelcommissionrate/add/").status_code == 200
    staff = Client()
    staff.force_login(merchant_staff)
    assert staff.get("/admin/marketing/levelcommissionrate/").status_code == 403


# -- the invite link -------------------------------------------------------------------------------------


def test_the_invite_link_and_qr_use_site_url_whatever_the_host(settings, program, user):
    settings.SITE_URL = "https://shop.example.com"
    settings.ALLOWED_HOSTS = ["*"]
    browser = Client(HTTP_HOST="evil.example.net")
    browser.force_login(user)
    code = referrals.code_for(user).code
    page = browser.get(reverse("accounts:invite")).content.decode()
    assert f'value="https://shop.example.com/?invite={code}"' in page and "evil.example.net" not in page
    import segno

    expected = segno.make(f"https://shop.example.com/?invite={code}", error="m")
    svg = browser.get(reverse("accounts:invite_qr")).content
    import io

    out = io.BytesIO()
    expected.save(out, kind="svg", scale=6, border=2, xmldecl=False)
    assert svg == out.getvalue()


# -- the invite page ---------------------------------------------------------------------------------------


def client_of(user, language: str = "en") -> Client:
    browser = Client()
    browser.cookies["django_language"] = language
    browser.force_login(user)
    return browser


def withdraw_post(browser, amount: str, key: str | None = None):
    return browser.post(
        reverse("accounts:invite_withdraw"),
        {"amount": amount, "alipay_account": "13800000000", "real_name": "张三", "key": key or withdrawals.new_key()},
    )


def test_the_page_withdraws_shows_fee_preview_history_and_statuses(stocked_sku, chain, operator, alipay,
                                                                  django_assert_num_queries):  # fmt: skip
    inviter = earn(stocked_sku, chain)
    browser = client_of(inviter)
    browser.get(reverse("accounts:invite"))  # warm: the invite code is made on the first visit
    with django_assert_num_queries(9):
        page = browser.get(reverse("accounts:invite"))
    text = text_of(page.content.decode())
    assert "Can be withdrawn ¥3.00" in text and "Withdrawing all ¥3.00: fee ¥0.10, you receive ¥2.90" in text
    assert "No withdrawals yet" in text and "Alipay account" in text and "支付宝" not in text
    key = withdrawals.new_key()
    done = withdraw_post(browser, "1.00", key=key)
    assert done.status_code == 302
    assert withdraw_post(browser, "1.00", key=key).status_code == 302  # double click: one request
    assert Withdrawal.objects.filter(user=inviter).count() == 1
    refused = withdraw_post(browser, "0.50")
    assert refused.status_code == 400 and "below the minimum" in text_of(refused.content.decode())
    too_much = withdraw_post(browser, "2.50")
    assert too_much.status_code == 400 and "more than the commission you can withdraw" in text_of(
        too_much.content.decode()
    )
    first = Withdrawal.objects.get(user=inviter)
    withdrawals.reject(withdrawal=first, reason="Name does not match", actor=operator)
    withdraw_post(browser, "1.20")
    paid = Withdrawal.objects.get(user=inviter, status=Status.REQUESTED)
    withdrawals.approve(withdrawal=paid, actor=operator)
    withdraw_post(browser, "1.00")
    failing = Withdrawal.objects.get(user=inviter, status=Status.REQUESTED)
    alipay.refuse[failing.out_biz_no] = "PAYEE_NOT_EXIST"
    withdrawals.approve(withdrawal=failing, actor=operator)
    with django_assert_num_queries(9):
        page = browser.get(reverse("accounts:invite"))
    text = text_of(page.content.decode())
    assert "rejected" in text and "Reason: Name does not match" in text
    assert "paid" in text and "payout failed" in text and "The transfer did not go through" in text
    assert "Withdrawn ¥1.20" in text and "Being withdrawn ¥1.00" in text
    assert "PAYEE_NOT_EXIST" not in text  # the gateway's error is for operators
    ledger_ok()


def test_nothing_to_withdraw_and_below_the_minimum_states(stocked_sku, chain, program):
    _grand, inviter, _buyer = chain
    text = text_of(client_of(inviter).get(reverse("accounts:invite")).content.decode())
    assert "No commission to withdraw yet" in text and 'name="amount"' not in text
    program.min_withdrawal_fen = 1_000
    program.save()
    earn(stocked_sku, chain, orders=1)
    page = client_of(inviter).get(reverse("accounts:invite")).content.decode()
    assert "You have ¥1.50 to withdraw; withdrawals start at ¥10.00." in text_of(page) and 'name="amount"' not in page
    assert withdraw_post(client_of(inviter), "1.50").status_code == 400


def test_the_page_in_chinese(stocked_sku, chain):
    inviter = earn(stocked_sku, chain)
    text = text_of(client_of(inviter, "zh-hans").get(reverse("accounts:invite")).content.decode())
    assert "提现" in text and "可提现" in text


# -- who may see and do what ---------------------------------------------------------------------------------


def test_another_users_withdrawals_are_never_shown(stocked_sku, chain, user):
    inviter = earn(stocked_sku, chain)
    ask(inviter, 123)
    text = text_of(client_of(user).get(reverse("accounts:invite")).content.decode())
    assert "¥1.23" not in text and "No withdrawals yet" in text
    assert "13800000000" not in text


def test_anonymous_visitors_are_sent_to_sign_in(program):
    for response in (Client().get(reverse("accounts:invite")), Client().post(reverse("accounts:invite_withdraw"), {})):
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert Withdrawal.objects.count() == 0


def test_only_operators_see_and_decide_withdrawals_in_admin(stocked_sku, chain, operator, merchant_staff, alipay):
    inviter = earn(stocked_sku, chain)
    asked = ask(inviter, 200)
    other = ask(inviter, 100)
    staff = Client()
    staff.force_login(merchant_staff)
    assert staff.get("/admin/marketing/withdrawal/").status_code == 403
    assert staff.get(f"/admin/marketing/withdrawal/{asked.pk}/change/").status_code == 403
    denied = staff.post(
        "/admin/marketing/withdrawal/", {"action": "approve", ACTION_CHECKBOX_NAME: [asked.pk], "confirm": "yes"}
    )
    assert denied.status_code == 403
    buyer = Client()
    buyer.force_login(inviter)
    assert buyer.get("/admin/marketing/withdrawal/").status_code == 302  # not staff: the admin's login
    asked.refresh_from_db()
    assert asked.status == Status.REQUESTED

    admin = Client()
    admin.cookies["django_language"] = "en"
    admin.force_login(operator)
    listing = admin.get("/admin/marketing/withdrawal/?status__exact=requested")
    assert listing.status_code == 200 and asked.out_biz_no in listing.content.decode()
    assert admin.get(f"/admin/marketing/withdrawal/{asked.pk}/change/").status_code == 200
    confirm = admin.post("/admin/marketing/withdrawal/", {"action": "reject", ACTION_CHECKBOX_NAME: [other.pk]})
    assert confirm.status_code == 200 and "Reason (shown to the user)" in confirm.content.decode()  # asks first
    other.refresh_from_db()
    assert other.status == Status.REQUESTED
    admin.post(
        "/admin/marketing/withdrawal/",
        {"action": "reject", ACTION_CHECKBOX_NAME: [other.pk], "confirm": "yes", "note": "重复申请"},
    )
    admin.post(
        "/admin/marketing/withdrawal/", {"action": "approve", ACTION_CHECKBOX_NAME: [asked.pk], "confirm": "yes"}
    )
    asked.refresh_from_db()
    other.refresh_from_db()
    assert (asked.status, other.status, other.reason) == (Status.PAID, Status.REJECTED, "重复申请")
    ledger_ok()


def test_an_approved_withdrawal_whose_task_was_lost_is_queued_again_and_paid_once(stocked_sku, chain, operator, alipay):
    from datetime import timedelta

    from django.utils import timezone

    from kameng.celery import app

    inviter = earn(stocked_sku, chain)
    asked = ask(inviter, 200)
    app.conf.task_always_eager, eager = False, app.conf.task_always_eager
    try:
        app.conf.broker_url, broker = "memory://", app.conf.broker_url  # the queued task goes nowhere
        try:
            withdrawals.approve(withdrawal=asked, actor=operator)
        finally:
            app.conf.broker_url = broker
    finally:
        app.conf.task_always_eager = eager
    asked.refresh_from_db()
    assert asked.status == Status.APPROVED and alipay.moved == []
    assert withdrawals.requeue_stuck() == 0  # not late yet
    assert withdrawals.requeue_stuck(now=timezone.now() + timedelta(hours=2)) == 1
    asked.refresh_from_db()
    assert asked.status == Status.PAID and len(alipay.moved) == 1
    assert withdrawals.requeue_stuck(now=timezone.now() + timedelta(hours=4)) == 0
    ledger_ok()


def _at_once(count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads released together; each closes its own connection."""
    from django.db import connections

    start, results = threading.Barrier(count), [None] * count

    def run(index):
        try:
            start.wait()
            results[index] = work(index)
        except Exception as exc:  # the test looks at what each thread got
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_clicks_with_one_key_make_one_request(stocked_sku, chain):
    inviter = earn(stocked_sku, chain)
    key = withdrawals.new_key()
    results = _at_once(6, lambda _i: ask(inviter, 200, key=key).pk)
    assert len(set(results)) == 1 and all(isinstance(r, int) for r in results)
    assert Withdrawal.objects.count() == 1 and wallet.balance_fen(inviter) == 100 and held() == 200
    ledger_ok()


def test_concurrent_requests_cannot_withdraw_the_same_commission_twice(stocked_sku, chain):
    inviter = earn(stocked_sku, chain)  # ¥3.00
    results = _at_once(6, lambda _i: ask(inviter, 200))
    made = [r for r in results if isinstance(r, Withdrawal)]
    assert len(made) == 1 and all(isinstance(r, withdrawals.WithdrawalError) for r in results if r not in made)
    assert wallet.balance_fen(inviter) == 100 and held() == 200
    ledger_ok()
