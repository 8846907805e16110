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
    assert text["params"] == {"order": order.number, "url": f"{settings.SITE_URL}/orders/{order.number}/"}
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
