"""Withdrawing commission in the browser, phone first: an inviter with commission fills the form on
/me/invite/ and sees the request in the history; then the page with every status (requested, paid,
rejected with its reason, payout failed), the empty and below-minimum states, at 390×844 and
1440×900 in Chinese and English, and the operators' list in admin. Each page fits the phone, raises
no script error and loads nothing that fails; screenshots go to test-artifacts/payout/."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import User
from accounts.tests.test_wallet_browser import sign_in
from kameng.testing.fixtures import ARTIFACTS
from marketing import withdrawals
from marketing.models import Referral, ReferralProgram, Withdrawal
from marketing.tests.test_referrals import beat, buy, later

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = ARTIFACTS / "payout"
SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
PASSWORD = "a-long-Passw0rd!"


@pytest.fixture
def inviter(demo_shop, stocked_sku, password):
    demo_shop.merchant.commission_rate = Decimal("0.20")
    demo_shop.merchant.save(update_fields=["commission_rate"])
    config = ReferralProgram.load()
    config.enabled, config.level1_rate, config.hold_days, config.min_withdrawal_fen = True, Decimal("0.15"), 7, 100
    config.withdrawal_fee_percent, config.withdrawal_fee_fixed_fen, config.withdrawal_fee_min_fen = Decimal("1"), 5, 10
    config.save()
    inviter = User.objects.create_user(email="inviter@example.com", password=password, nickname="阿强")
    buyer = User.objects.create_user(email="friend@example.com", password=PASSWORD)
    Referral.objects.create(invitee=buyer, inviter=inviter)
    for _ in range(5):
        buy(stocked_sku, buyer)  # ¥1.50 each
    beat(now=later())
    return inviter


def look(browser, live_server, user, password, *, label: str, problems: list[str]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for language in ("zh-hans", "en"):
        for size, (width, height) in SIZES.items():
            context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
            sign_in(context, live_server, user, password)
            context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
            tab = context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            tab.on(
                "response", lambda r, errors=errors: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None
            )
            response = tab.goto("/me/invite/")
            where = f"{label} {language} {size}"
            if response is None or response.status != 200:
                problems.append(f"{where}: status {response.status if response else None}")
            if size == "phone" and tab.evaluate("document.documentElement.scrollWidth") > width:
                problems.append(f"{where}: wider than the phone")
            problems.extend(f"{where}: {e}" for e in errors)
            tab.screenshot(path=str(SHOTS / f"invite-{label}-{language}-{size}.png"), full_page=True)
            context.close()


def test_withdraw_from_the_invite_page_then_every_status(browser, live_server, inviter, password, operator, settings):
    settings.SITE_URL = live_server.url
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    sign_in(context, live_server, inviter, password)
    tab = context.new_page()
    tab.goto("/me/invite/")
    assert tab.locator("#withdrawable").inner_text() == "¥7.50"
    assert "fee ¥0.13, you receive ¥7.37" in tab.locator("#fee-preview").inner_text()  # 1% (7.5 → 8) + 5
    tab.fill("#id_amount", "2.00")
    tab.fill("#id_alipay_account", "13800000000")
    tab.fill("#id_real_name", "张三")
    with tab.expect_navigation(url="**/me/invite/#withdrawals"):
        tab.locator(".withdraw-form button[type=submit]").dblclick()  # a double click: one request
    tab.wait_for_load_state()
    assert Withdrawal.objects.filter(user=inviter).count() == 1
    assert tab.locator(".withdrawals tbody tr").count() == 1
    assert "requested" in tab.locator(".withdrawals tbody tr").first.inner_text()
    tab.fill("#id_amount", "100")
    tab.fill("#id_alipay_account", "13800000000")
    tab.fill("#id_real_name", "张三")
    with tab.expect_navigation():
        tab.locator(".withdraw-form button[type=submit]").click()
    assert tab.locator(".withdraw-error").is_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / "invite-error-en-phone.png"), full_page=True)
    context.close()

    first = Withdrawal.objects.get(user=inviter)
    withdrawals.reject(withdrawal=first, reason="实名与支付宝账号不符", actor=operator)
    paid = withdrawals.request(user=inviter, amount_fen=150, alipay_account="a@example.com", real_name="张三",
                               key="k2")  # fmt: skip
    withdrawals.mark_paid_offline(withdrawal=paid, reference="BANK-1", actor=operator)
    failed = withdrawals.request(user=inviter, amount_fen=120, alipay_account="a@example.com", real_name="张三",
                                 key="k3")  # fmt: skip
    Withdrawal.objects.filter(pk=failed.pk).update(status=Withdrawal.Status.FAILED, last_error="PAYEE_NOT_EXIST")
    withdrawals.request(user=inviter, amount_fen=100, alipay_account="a@example.com", real_name="张三", key="k4")
    problems: list[str] = []
    look(browser, live_server, inviter, password, label="history", problems=problems)
    assert problems == []

    admin = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    sign_in(admin, live_server, operator, password)
    page = admin.new_page()
    page.goto("/admin/marketing/withdrawal/")
    assert page.locator("#result_list tbody tr").count() == 4
    page.screenshot(path=str(SHOTS / "admin-withdrawals-en-desktop.png"), full_page=True)
    page.locator("#result_list tbody tr").nth(0).locator("input[type=checkbox]").check()
    page.select_option("select[name=action]", "reject")
    page.locator("button[name=index]").click()
    assert page.locator("#confirm-action-form").is_visible()
    page.screenshot(path=str(SHOTS / "admin-reject-confirm-en-desktop.png"), full_page=True)
    admin.close()


def test_the_empty_and_below_minimum_states(browser, live_server, demo_shop, stocked_sku, user, password):
    problems: list[str] = []
    look(browser, live_server, user, password, label="empty", problems=problems)
    config = ReferralProgram.load()
    config.enabled, config.level1_rate, config.hold_days, config.min_withdrawal_fen = True, Decimal("0.05"), 7, 5_000
    config.save()
    demo_shop.merchant.commission_rate = Decimal("0.20")
    demo_shop.merchant.save(update_fields=["commission_rate"])
    buyer = User.objects.create_user(email="friend2@example.com", password=PASSWORD)
    Referral.objects.create(invitee=buyer, inviter=user)
    buy(stocked_sku, buyer)
    beat(now=later())
    look(browser, live_server, user, password, label="below-minimum", problems=problems)
    assert problems == []
