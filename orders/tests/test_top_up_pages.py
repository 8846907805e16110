"""A wallet top-up is shown as a top-up (issue 11): its own status wording, no codes, downloads or
after-sales; a countdown that reads as one; the wallet page names the gateways actually offered and
writes a debit as −¥; the wallet option at checkout and on the order page is shown disabled with
the balance and what is missing, instead of disappearing."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts import wallet
from orders import emails
from orders import services as orders
from orders.models import Order
from orders.tests.conftest import pay, place

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user, password, language: str = "en") -> Client:
    browser = Client()
    browser.cookies["django_language"] = language
    assert browser.login(email=user.email, password=password)
    return browser


@pytest.fixture
def top_up(user) -> Order:
    return orders.place_top_up(buyer=user, amount_fen=5_000, idempotency_key="top-up").order


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- the top-up order page -----------------------------------------------------------------------------------
def test_a_pending_top_up_reads_as_a_top_up_with_a_countdown_in_minutes(user, password, top_up):
    page = signed_in(user, password).get(top_up.get_absolute_url()).content.decode()
    text = text_of(page)
    assert "Wallet top-up ¥50.00" in text and "Waiting for payment" in text
    countdown = text_of(re.search(r'<p class="countdown">(.*?)</p>', page, re.S).group(1)).strip()
    assert re.fullmatch(r"Pay within 1[45]:\d\d \.", countdown)  # no "seconds", no codes held
    assert re.search(r'<strong id="countdown" data-seconds="\d+">1[45]:\d\d</strong>', page)


def test_a_credited_top_up_has_no_codes_downloads_or_after_sales(user, password, top_up):
    pay(top_up)
    top_up.refresh_from_db()
    assert top_up.status == Order.Status.DELIVERED
    browser = signed_in(user, password)
    page = browser.get(top_up.get_absolute_url()).content.decode()
    status = text_of(re.search(r'<p class="status[^"]*">(.*?)</p>', page, re.S).group(1)).strip()
    assert status == "Credited"
    assert "credited to your wallet" in page
    assert "Delivered" not in page and "Download" not in page and "After-sales" not in page
    assert 'class="items"' not in page
    assert browser.get(reverse("orders:download", args=[top_up.number, "txt"])).status_code == 404

    chinese = signed_in(user, password, "zh-hans").get(top_up.get_absolute_url()).content.decode()
    assert "已到账" in chinese and "已发货" not in chinese and "售后" not in chinese


def test_the_chinese_countdown_reads_as_a_time_to_pay(user, password, top_up, stocked_sku):
    text = text_of(signed_in(user, password, "zh-hans").get(top_up.get_absolute_url()).content.decode())
    assert re.search(r"请在 1[45]:\d\d 内完成支付。", text) and "秒内完成" not in text
    goods = place(stocked_sku, 1, buyer=user).order
    text = text_of(signed_in(user, password, "zh-hans").get(goods.get_absolute_url()).content.decode())
    assert re.search(r"请在 1[45]:\d\d 内完成支付，卡密为您保留到那时。", text) and "秒内完成" not in text


def test_my_orders_labels_a_top_up_and_its_status(user, password, top_up, stocked_sku):
    place(stocked_sku, 1, buyer=user)
    pay(top_up)
    page = text_of(signed_in(user, password).get(reverse("orders:mine")).content.decode())
    assert f"{top_up.number} Wallet top-up ¥50.00 ¥50.00 · credited" in page
    assert "测试面额" in page
    chinese = text_of(signed_in(user, password, "zh-hans").get(reverse("orders:mine")).content.decode())
    assert "钱包充值 ¥50.00" in chinese and "已到账" in chinese


def test_a_top_up_e_mail_says_the_wallet_was_credited(user, top_up):
    pay(top_up)
    assert emails.send_delivery_email(order_id=top_up.pk, again=True)
    [message] = mail.outbox
    assert message.subject == f"Your wallet top-up {top_up.number} was credited" or "钱包充值" in message.subject
    with translation.override("en"):
        top_up.language = "en"
        top_up.save(update_fields=["language"])
        mail.outbox.clear()
        emails.send_delivery_email(order_id=top_up.pk, again=True)
    [message] = mail.outbox
    assert message.subject == f"Your wallet top-up {top_up.number} was credited"
    assert f"Your wallet top-up {top_up.number} of ¥50.00 was credited to your wallet." in message.body
    assert "codes" not in message.body.lower()


# --- the wallet page -----------------------------------------------------------------------------------------
def test_the_wallet_page_names_the_gateways_offered_and_writes_debits_with_a_minus_sign(user, password, settings):
    wallet.credit(user=user, amount_fen=5_000, kind=wallet.Kind.TOP_UP, reference="t")
    wallet.debit(user=user, amount_fen=2_910, kind=wallet.Kind.PAYMENT, reference="p")
    page = signed_in(user, password).get(reverse("accounts:wallet")).content.decode()
    assert "You pay with Sandbox (test payments) on the next page" in page
    assert "Alipay" not in page and "WeChat" not in page
    assert "\u2212¥29.10" in page and "¥-29.10" not in page


def test_the_top_up_link_fills_in_the_amount(user, password):
    page = signed_in(user, password).get(reverse("accounts:wallet") + "?amount=7.00")
    assert page.context["form"]["amount"].value() == "7.00"


# --- the wallet option when the balance is too low -----------------------------------------------------------
def test_checkout_shows_the_wallet_disabled_with_the_balance_and_what_is_missing(user, password, stocked_sku):
    wallet.credit(user=user, amount_fen=300, kind=wallet.Kind.TOP_UP, reference="t")
    browser = signed_in(user, password)
    browser.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 1})
    page = browser.get(reverse("orders:checkout"))
    assert "balance" not in dict(page.context["form"]["pay_with"].field.choices)
    html = page.content.decode()
    assert "Balance ¥3.00, ¥7.00 short." in html
    assert '<input type="radio" disabled> wallet balance' in html
    assert f'href="{reverse("accounts:wallet")}?amount=7.00#top-up"' in html
    browser.cookies["django_language"] = "zh-hans"
    chinese = browser.get(reverse("orders:checkout")).content.decode()
    assert "余额 ¥3.00，还差 ¥7.00" in chinese


def test_an_empty_wallet_is_shown_too_and_guests_see_no_wallet(client, user, password, stocked_sku):
    browser = signed_in(user, password)
    browser.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 1})
    assert "Balance ¥0.00, ¥10.00 short." in browser.get(reverse("orders:checkout")).content.decode()
    client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 1})
    assert "short." not in client.get(reverse("orders:checkout")).content.decode()


def test_the_order_page_shows_the_wallet_disabled_with_what_is_missing(user, password, stocked_sku):
    wallet.credit(user=user, amount_fen=300, kind=wallet.Kind.TOP_UP, reference="t")
    order = place(stocked_sku, 1, buyer=user).order
    html = signed_in(user, password).get(order.get_absolute_url()).content.decode()
    assert re.search(r'<button type="button" class="primary" disabled>Pay ¥10.00 with wallet balance</button>', html)
    assert "Balance ¥3.00, ¥7.00 short." in html
    assert 'name="provider" value="balance"' not in html
    wallet.credit(user=user, amount_fen=700, kind=wallet.Kind.TOP_UP, reference="t2")
    html = signed_in(user, password).get(order.get_absolute_url()).content.decode()
    assert 'name="provider" value="balance"' in html and "short." not in html
