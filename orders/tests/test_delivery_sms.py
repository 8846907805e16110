"""Delivery by SMS (issue 13): one text with the order link to the number the buyer gave, when they
asked for it; the codes in it only when the SKU's merchant allows it; sent after the delivery
committed, once however often delivery runs, and never written to the log."""

from __future__ import annotations

import logging

import pytest
from django.core import mail
from django.db import transaction

from accounts.models import User
from accounts.tests.conftest import TEMPLATES, aliyun_sms  # noqa: F401  (the fake gateway fixture)
from orders import services, sms
from orders.models import Order
from orders.tests.conftest import pay, place

pytestmark = pytest.mark.django_db(transaction=True)

NUMBER = "+8613800138000"


def texts(outbox):
    return [m for m in outbox(NUMBER) if m["template"].startswith("delivery")]


def test_a_delivered_order_texts_its_link_once(stocked_sku, sms_outbox, settings):
    order = place(stocked_sku, phone="138 0013 8000", sms_opt_in=True).order
    pay(order)
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED and order.delivery_sms_sent_at is not None
    [text] = texts(sms_outbox)
    assert text["template"] == "delivery"  # the SKU does not allow codes by SMS
    assert text["params"]["order"] == order.number
    assert text["params"]["url"].startswith(f"{settings.SITE_URL}/orders/{order.number}/?t=")  # a guest's link
    # Delivery run again (a retried task), the send called again: nothing more goes out.
    assert services.deliver_order(order_id=order.pk) == services.DeliveryOutcome.SKIPPED
    assert sms.send_delivery_sms(order_id=order.pk) is False
    assert len(texts(sms_outbox)) == 1


def test_codes_go_by_sms_only_where_the_merchant_allows_it(stocked_sku, sms_outbox):
    stocked_sku.sms_code_allowed = True
    stocked_sku.save()
    order = place(stocked_sku, 2, phone=NUMBER, sms_opt_in=True).order
    pay(order)
    [text] = texts(sms_outbox)
    assert text["template"] == "delivery_codes"
    assert sorted(text["params"]["codes"].split(" ")) == ["T-000/P0", "T-001/P1"]


def test_no_text_without_the_buyers_consent_or_number(stocked_sku, sms_outbox):
    not_asked = place(stocked_sku, phone=NUMBER).order
    no_number = place(stocked_sku, sms_opt_in=True).order
    pay(not_asked)
    pay(no_number)
    assert sms_outbox() == []
    assert Order.objects.get(pk=no_number.pk).sms_opt_in is False


def test_sent_only_after_the_delivery_commits(stocked_sku, sms_outbox):
    order = place(stocked_sku, phone=NUMBER, sms_opt_in=True).order
    with transaction.atomic():
        Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID)
        services.deliver_order(order_id=order.pk)
        assert sms_outbox() == []  # delivered inside the transaction, not yet committed
    assert len(texts(sms_outbox)) == 1


def test_the_aliyun_request_carries_the_codes_and_nothing_is_logged(stocked_sku, aliyun_sms, caplog):  # noqa: F811
    stocked_sku.sms_code_allowed = True
    stocked_sku.save()
    caplog.set_level(logging.DEBUG)
    order = place(stocked_sku, phone=NUMBER, sms_opt_in=True).order
    pay(order)
    [request] = aliyun_sms.sent
    assert request["TemplateCode"] == TEMPLATES["delivery_codes"] and request["PhoneNumbers"] == "13800138000"
    assert aliyun_sms.params()["codes"] == "T-000/P0"
    assert "T-000" not in caplog.text and "13800138000" not in caplog.text


def test_a_gateway_failure_is_logged_without_the_text_and_not_retried(stocked_sku, aliyun_sms, caplog):  # noqa: F811
    stocked_sku.sms_code_allowed = True
    stocked_sku.save()
    aliyun_sms.refuse_with = "isv.MOBILE_NUMBER_ILLEGAL"
    caplog.set_level(logging.DEBUG)
    order = place(stocked_sku, phone=NUMBER, sms_opt_in=True).order
    pay(order)
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED  # the delivery stands
    assert "isv.MOBILE_NUMBER_ILLEGAL" in caplog.text and "T-000" not in caplog.text
    assert sms.send_delivery_sms(order_id=order.pk) is False and len(aliyun_sms.sent) == 1


def test_a_buyer_who_turned_delivery_e_mail_off_gets_none(stocked_sku, sms_outbox):
    buyer = User.objects.create_user("quiet@example.com", "pw", notify_delivery_email=False)
    pay(place(stocked_sku, email=buyer.email, buyer=buyer).order)
    guest = place(stocked_sku, email="guest@example.com").order
    pay(guest)
    assert [m.to for m in mail.outbox] == [["guest@example.com"]]


def test_checkout_offers_the_text_defaulting_to_the_buyers_setting(client, stocked_sku, sms_outbox):
    buyer = User.objects.create_user(
        "b@example.com", "pw", phone=NUMBER, phone_verified=True, notify_delivery_sms=True
    )  # fmt: skip
    client.force_login(buyer)
    client.post("/orders/cart/add/", {"sku": stocked_sku.pk, "quantity": 1})
    form = client.get("/orders/checkout/").context["form"]
    assert form.initial["sms_delivery"] is True and form.initial["phone"] == NUMBER


def test_merchants_set_it_per_sku_in_admin(client, merchant_staff, stocked_sku):
    client.force_login(merchant_staff)
    html = client.get(f"/admin/catalog/sku/{stocked_sku.pk}/change/").content.decode()
    assert 'name="sms_code_allowed"' in html
    assert Order._meta.get_field("sms_opt_in").default is False


# -- the guest's link ---------------------------------------------------------------------------------------
def test_the_guest_link_opens_the_order_on_the_phone_without_the_secret(stocked_sku, sms_outbox, settings):
    from django.test import Client

    order = place(stocked_sku, phone="138 0013 8000", sms_opt_in=True).order
    pay(order)
    [text] = texts(sms_outbox)
    path = text["params"]["url"].removeprefix(settings.SITE_URL)
    phone = Client()
    assert phone.get(f"/orders/{order.number}/").status_code == 404  # the number alone opens nothing
    opened = phone.get(path)
    assert opened.status_code == 302 and opened["Location"] == f"/orders/{order.number}/"  # token dropped
    page = phone.get(f"/orders/{order.number}/")
    assert (page.status_code == 200 and "T-000" in page.content.decode()) or "T-0" in page.content.decode()


def test_a_forged_expired_or_other_orders_token_opens_nothing(stocked_sku, settings):
    from django.core import signing
    from django.test import Client

    from orders import access

    first, second = place(stocked_sku).order, place(stocked_sku).order
    token = access.link_token(first)
    stranger = Client()
    for path in (
        f"/orders/{second.number}/?t={token}",  # another order's token
        f"/orders/{first.number}/?t={token[:-2]}xx",  # tampered
        f"/orders/{first.number}/?t=",  # empty
    ):
        stranger.get(path)
        assert stranger.get(f"/orders/{first.number}/").status_code == 404
        assert stranger.get(f"/orders/{second.number}/").status_code == 404
    old = signing.TimestampSigner(salt=access.LINK_SALT)
    import time

    real_time = time.time
    try:
        time.time = lambda: real_time() - access.LINK_MAX_AGE - 60  # signed 7 days and a minute ago
        stale = old.sign(first.number)[len(first.number) + 1 :]
    finally:
        time.time = real_time
    stranger.get(f"/orders/{first.number}/?t={stale}")
    assert stranger.get(f"/orders/{first.number}/").status_code == 404
    assert Client().get(f"/orders/{first.number}/?t={token}").status_code == 302  # the real one still works


def test_a_buyers_order_gets_no_token(stocked_sku, sms_outbox, settings):
    from orders import access

    buyer = User.objects.create_user(email="b@example.com", password="x-password-123")
    order = place(stocked_sku, buyer=buyer, email=buyer.email).order
    assert access.guest_link_query(order) == ""
    from django.test import Client

    browser = Client()
    browser.get(f"/orders/{order.number}/?t={access.link_token(order)}")  # a token made anyway opens nothing
    assert browser.get(f"/orders/{order.number}/").status_code == 404
