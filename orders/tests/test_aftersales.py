"""After-sales: open a request on a delivered order; replace codes, refund (whole or part) or reject."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, close_old_connections, transaction
from django.utils import translation
from PIL import Image

from catalog.models import CardCode, Product
from orders import aftersales, selectors
from orders.models import AfterSalesRequest, Order, OrderItemCode
from orders.tests.conftest import delivered, image_bytes, pay, place
from payments.models import Refund

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _english():
    """The messages asserted here are the English source strings (the shop's default is Chinese)."""
    with translation.override("en"):
        yield


Status = AfterSalesRequest.Status


def open_for(order, reason="invalid_code", message="第一张卡密提示无效", **kwargs):
    return aftersales.open_request(order=order, reason=reason, message=message, actor=order.buyer, **kwargs)


def codes_of(order) -> list[str]:
    return sorted(secret.code for entry in selectors.delivered_codes(order=order) for secret in entry.secrets)


def code_statuses(sku) -> dict[str, int]:
    found: dict[str, int] = {}
    for status in sku.codes.values_list("status", flat=True):
        found[status] = found.get(status, 0) + 1
    return found


# -- opening ----------------------------------------------------------------------------------------------


def test_buyer_opens_a_request_on_a_delivered_order(stocked_sku, settings):
    settings.OPERATOR_EMAILS = ["ops@kameng.example"]
    order = delivered(stocked_sku, 1)
    mail.outbox.clear()
    request = open_for(order)
    assert request.status == Status.OPEN and request.reason == "invalid_code"
    event = order.events.get(kind="after_sales_opened")
    assert event.data == {"request_id": request.pk, "reason": "invalid_code", "evidence": False}
    # The merchant (contact e-mail) and the operators hear about it; no code is in that e-mail.
    [message] = mail.outbox
    assert sorted(message.to) == sorted([order.items.get().merchant.contact_email, "ops@kameng.example"])
    assert order.number in message.subject and "第一张卡密提示无效" in message.body
    assert f"/admin/orders/aftersalesrequest/{request.pk}/change/" in message.body
    assert not any(code in message.body for code in codes_of(order))


@pytest.mark.parametrize("reason", ["", "refund_please"])
def test_reason_must_be_one_of_the_choices(stocked_sku, reason):
    order = delivered(stocked_sku)
    with pytest.raises(aftersales.AfterSalesError):
        open_for(order, reason=reason)
    with pytest.raises(aftersales.AfterSalesError, match="what went wrong"):
        open_for(order, message="   ")
    assert not AfterSalesRequest.objects.exists()


def test_only_delivered_orders_with_codes(stocked_sku, operator):
    pending = place(stocked_sku).order
    with pytest.raises(aftersales.AfterSalesError, match="only for delivered orders"):
        open_for(pending)

    Product.objects.filter(pk=stocked_sku.product_id).update(delivery_mode=Product.DeliveryMode.MANUAL)
    manual = place(stocked_sku).order
    pay(manual)
    manual.refresh_from_db()
    assert manual.status == Order.Status.PROCESSING
    with pytest.raises(aftersales.AfterSalesError, match="only for delivered orders"):
        open_for(manual)
    from orders import services

    services.complete_manual_delivery(order=manual, results={manual.items.get().pk: "done"}, actor=operator)
    manual.refresh_from_db()
    with pytest.raises(aftersales.AfterSalesError, match="no card codes"):
        open_for(manual)
    assert not AfterSalesRequest.objects.exists()


def test_one_open_request_at_a_time(stocked_sku, operator):
    order = delivered(stocked_sku)
    first = open_for(order)
    with pytest.raises(aftersales.AfterSalesError, match="already has an open"):
        open_for(order, reason="other", message="again")
    aftersales.reject(request=first, actor=operator, note="卡密已被使用，请检查")
    second = open_for(order, reason="other", message="still broken")
    assert second.status == Status.OPEN
    assert AfterSalesRequest.objects.filter(order=order).count() == 2


def test_the_database_refuses_a_second_open_request(stocked_sku):
    order = delivered(stocked_sku)
    open_for(order)
    with pytest.raises(IntegrityError), transaction.atomic():
        AfterSalesRequest.objects.create(order=order, reason="other", message="bypassing the service")


def test_requests_per_order_are_capped(stocked_sku, operator):
    order = delivered(stocked_sku)
    for n in range(aftersales.MAX_REQUESTS_PER_ORDER):
        aftersales.reject(request=open_for(order, message=f"try {n}"), actor=operator, note="no")
    with pytest.raises(aftersales.AfterSalesError, match="too many"):
        open_for(order)


def test_evidence_is_re_encoded_without_metadata(stocked_sku, media_root):
    order = delivered(stocked_sku)
    upload = SimpleUploadedFile(
        "IMG_0001.jpg", image_bytes("JPEG", (3000, 1500), exif={0x010F: "PhoneMaker"}), content_type="image/jpeg"
    )
    request = open_for(order, evidence=upload)
    request.refresh_from_db()
    assert request.evidence.name.startswith("after-sales/") and "IMG_0001" not in request.evidence.name
    stored = media_root / request.evidence.name
    with Image.open(stored) as image:
        assert image.format == "JPEG"
        assert max(image.size) == aftersales.EVIDENCE_MAX_SIDE  # shrunk to fit
        assert not image.getexif()  # the phone's metadata is gone
    assert order.events.get(kind="after_sales_opened").data["evidence"] is True


def test_evidence_must_be_a_readable_small_image(stocked_sku, media_root, settings):
    order = delivered(stocked_sku)
    not_an_image = SimpleUploadedFile("x.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", content_type="image/png")
    with pytest.raises(aftersales.AfterSalesError, match="not an image"):
        open_for(order, evidence=not_an_image)
    huge = SimpleUploadedFile("big.png", image_bytes("PNG") + b"\0" * aftersales.EVIDENCE_MAX_BYTES)
    with pytest.raises(aftersales.AfterSalesError, match="too large"):
        open_for(order, evidence=huge)
    bmp = SimpleUploadedFile("x.bmp", image_bytes("BMP"), content_type="image/bmp")
    with pytest.raises(aftersales.AfterSalesError, match="JPEG, PNG"):
        open_for(order, evidence=bmp)
    assert not AfterSalesRequest.objects.exists()
    assert not (media_root / "after-sales").exists() or not any((media_root / "after-sales").rglob("*.*"))


def test_a_refused_request_leaves_no_file_behind(stocked_sku, media_root):
    order = delivered(stocked_sku)
    open_for(order)
    upload = SimpleUploadedFile("shot.png", image_bytes("PNG"), content_type="image/png")
    with pytest.raises(aftersales.AfterSalesError):
        open_for(order, evidence=upload)
    assert not any(media_root.rglob("*.png"))


# -- replacing codes -----------------------------------------------------------------------------------------


def test_replace_hands_over_fresh_codes_and_voids_the_bad_one(stocked_sku, merchant_staff):
    order = delivered(stocked_sku, 2)
    before = codes_of(order)
    assert before == ["T-000", "T-001"]
    bad = OrderItemCode.objects.filter(item__order=order).order_by("pk").first()
    mail.outbox.clear()
    request = open_for(order)
    mail.outbox.clear()

    aftersales.replace_codes(request=request, actor=merchant_staff, item_codes=[bad.pk], note="已为您更换")

    request.refresh_from_db()
    assert (request.status, request.decided_by, request.decision_note) == (
        Status.REPLACED,
        merchant_staff,
        "已为您更换",
    )
    old_code = CardCode.objects.get(pk=bad.code_id)
    assert old_code.status == CardCode.Status.VOID and old_code.voided_at is not None
    assert OrderItemCode.objects.get(pk=bad.pk).status == OrderItemCode.Status.RELEASED
    after = codes_of(order)
    assert len(after) == 2 and "T-002" in after and len(set(after) & set(before)) == 1
    # Stock: 5 codes = 2 sold to this order (one of them the replacement) + 1 void + 2 for sale.
    assert code_statuses(stocked_sku) == {"sold": 2, "void": 1, "available": 2}
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    event = order.events.get(kind="after_sales_codes_replaced")
    assert event.actor == merchant_staff and event.data["old_code_ids"] == [bad.code_id]
    # The buyer gets the new code (and only it) by e-mail.
    [message] = mail.outbox
    assert message.to == [order.email]
    assert "T-002" in message.body and "T-002" in message.alternatives[0][0]
    old_plain = next(code for code in before if code not in after)
    assert old_plain not in message.body


def test_replace_all_codes_by_default(stocked_sku, operator):
    order = delivered(stocked_sku, 2)
    aftersales.replace_codes(request=open_for(order), actor=operator)
    assert codes_of(order) == ["T-002", "T-003"]
    assert code_statuses(stocked_sku) == {"sold": 2, "void": 2, "available": 1}


def test_replace_without_stock_leaves_the_request_open(stocked_sku, operator):
    order = delivered(stocked_sku, 5)
    request = open_for(order)
    with pytest.raises(aftersales.AfterSalesError, match="Not enough codes"):
        aftersales.replace_codes(request=request, actor=operator)
    request.refresh_from_db()
    assert request.status == Status.OPEN
    assert code_statuses(stocked_sku) == {"sold": 5}
    assert codes_of(order) == [f"T-{i:03d}" for i in range(5)]


def test_replace_refuses_codes_of_another_order(stocked_sku, operator):
    order = delivered(stocked_sku)
    other = delivered(stocked_sku)
    foreign = OrderItemCode.objects.get(item__order=other)
    request = open_for(order)
    with pytest.raises(aftersales.AfterSalesError, match="not delivered codes of this order"):
        aftersales.replace_codes(request=request, actor=operator, item_codes=[foreign.pk])
    assert CardCode.objects.filter(status="void").count() == 0


def test_a_double_click_decides_once(stocked_sku, operator):
    order = delivered(stocked_sku)
    request = open_for(order)
    aftersales.replace_codes(request=request, actor=operator)
    stale = AfterSalesRequest.objects.get(pk=request.pk)
    with pytest.raises(aftersales.AlreadyDecided):
        aftersales.replace_codes(request=request, actor=operator)
    with pytest.raises(aftersales.AlreadyDecided):
        aftersales.refund(request=stale, actor=operator)
    with pytest.raises(aftersales.AlreadyDecided):
        aftersales.reject(request=stale, actor=operator, note="no")
    assert CardCode.objects.filter(status="void").count() == 1
    assert not Refund.objects.exists()


def test_two_people_deciding_at_the_same_moment_give_one_decision(stocked_sku, operator, merchant_staff):
    order = delivered(stocked_sku)
    request = open_for(order)
    barrier = threading.Barrier(2)
    outcomes = []

    def decide(fn):
        try:
            barrier.wait()
            fn()
            outcomes.append("decided")
        except aftersales.AlreadyDecided:
            outcomes.append("already")
        finally:
            close_old_connections()

    threads = [
        threading.Thread(target=decide, args=(lambda: aftersales.refund(request=request, actor=operator),)),
        threading.Thread(
            target=decide, args=(lambda: aftersales.reject(request=request, actor=merchant_staff, note="不予退款"),)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["already", "decided"]
    request.refresh_from_db()
    order.refresh_from_db()
    if request.status == Status.REFUNDED:
        assert Refund.objects.count() == 1 and order.status == Order.Status.REFUNDED
    else:
        assert request.status == Status.REJECTED
        assert not Refund.objects.exists() and order.status == Order.Status.DELIVERED


# -- refunds ------------------------------------------------------------------------------------------------


def test_refund_in_full_through_the_payment_service(stocked_sku, merchant_staff):
    order = delivered(stocked_sku, 2)
    request = open_for(order)
    mail.outbox.clear()
    refund = aftersales.refund(request=request, actor=merchant_staff, note="抱歉")
    refund.refresh_from_db()
    assert (refund.reason, refund.status, refund.amount_fen) == ("after_sales", "succeeded", 2000)
    assert refund.requested_by == merchant_staff
    order.refresh_from_db()
    assert (order.status, order.refunded_fen) == (Order.Status.REFUNDED, 2000)
    request.refresh_from_db()
    assert (request.status, request.refund_fen) == (Status.REFUNDED, 2000)
    kinds = list(order.events.values_list("kind", flat=True))
    assert kinds.index("after_sales_refund") < kinds.index("refunded") < kinds.index("closed_refunded")
    assert order.events.get(kind="after_sales_refund").actor == merchant_staff
    [message] = mail.outbox
    assert message.to == [order.email] and "¥20.00" in message.body and "抱歉" in message.body


def test_partial_refund_keeps_the_order_delivered(stocked_sku, operator):
    order = delivered(stocked_sku, 2)
    aftersales.refund(request=open_for(order), amount_fen=500, actor=operator)
    order.refresh_from_db()
    assert (order.status, order.refunded_fen) == (Order.Status.DELIVERED, 500)
    assert Refund.objects.get().status == "succeeded"
    assert "partially_refunded" in order.events.values_list("kind", flat=True)
    assert codes_of(order) == ["T-000", "T-001"]  # the buyer keeps the codes

    # A later request may refund the rest, and not a fen more.
    second = open_for(order, reason="other", message="the other one too")
    with pytest.raises(aftersales.AfterSalesError, match=r"at most ¥15\.00"):
        aftersales.refund(request=second, amount_fen=1501, actor=operator)
    aftersales.refund(request=second, actor=operator)
    order.refresh_from_db()
    assert (order.status, order.refunded_fen) == (Order.Status.REFUNDED, 2000)
    assert sorted(Refund.objects.values_list("amount_fen", flat=True)) == [500, 1500]


@pytest.mark.parametrize("amount", [0, -1, 2001])
def test_refund_amount_must_fit(stocked_sku, operator, amount):
    order = delivered(stocked_sku, 2)
    request = open_for(order)
    with pytest.raises(aftersales.AfterSalesError, match="more than"):
        aftersales.refund(request=request, amount_fen=amount, actor=operator)
    request.refresh_from_db()
    order.refresh_from_db()
    assert request.status == Status.OPEN and order.status == Order.Status.DELIVERED
    assert not Refund.objects.exists()


def test_merchant_staff_refund_at_most_their_own_items(demo_shop, stocked_sku, other_merchant_staff):
    theirs = demo_shop.products["honor-of-kings"].skus.get(label="60点券")
    from orders import services
    from orders.tests.conftest import pay as pay_order

    placed = services.place_order(
        lines=[services.CartLine(sku_id=stocked_sku.pk, quantity=1), services.CartLine(sku_id=theirs.pk, quantity=1)],
        email="two@example.com", idempotency_key="two-merchants",
    )  # fmt: skip
    pay_order(placed.order)
    request = open_for(placed.order)
    assert aftersales.refund_limit_fen(request=request, actor=other_merchant_staff) == 580
    with pytest.raises(aftersales.AfterSalesError, match=r"at most ¥5\.80"):
        aftersales.refund(request=request, amount_fen=1000, actor=other_merchant_staff)
    aftersales.refund(request=request, actor=other_merchant_staff)
    assert Refund.objects.get().amount_fen == 580
    placed.order.refresh_from_db()
    assert (placed.order.status, placed.order.refunded_fen) == (Order.Status.DELIVERED, 580)

    # ... and replace only their own item's code.
    aftersales.replace_codes(request=open_for(placed.order), actor=other_merchant_staff)
    released = OrderItemCode.objects.get(item__order=placed.order, status="released")
    assert released.item.sku_id == theirs.pk
    assert OrderItemCode.objects.get(item__order=placed.order, item__sku=stocked_sku).status == "delivered"


# -- rejecting, and who may decide --------------------------------------------------------------------------


def test_reject_needs_a_note_the_buyer_reads(stocked_sku, merchant_staff):
    order = delivered(stocked_sku)
    request = open_for(order)
    with pytest.raises(aftersales.AfterSalesError, match="Say why"):
        aftersales.reject(request=request, actor=merchant_staff, note="  ")
    request.refresh_from_db()
    assert request.status == Status.OPEN
    mail.outbox.clear()
    aftersales.reject(request=request, actor=merchant_staff, note="该卡密已于昨日被充值使用")
    request.refresh_from_db()
    assert (request.status, request.decided_by) == (Status.REJECTED, merchant_staff)
    assert order.events.get(kind="after_sales_rejected").note == "该卡密已于昨日被充值使用"
    [message] = mail.outbox
    assert message.to == [order.email] and "该卡密已于昨日被充值使用" in message.body
    assert not any(code in message.body for code in codes_of(order))


def test_another_merchant_cannot_decide(stocked_sku, other_merchant_staff, user):
    order = delivered(stocked_sku)
    request = open_for(order)
    with pytest.raises(PermissionDenied):
        aftersales.reject(request=request, actor=other_merchant_staff, note="not mine")
    with pytest.raises(PermissionDenied):
        aftersales.refund(request=request, actor=other_merchant_staff)
    with pytest.raises(PermissionDenied):
        aftersales.replace_codes(request=request, actor=other_merchant_staff)
    with pytest.raises(PermissionDenied):
        aftersales.reject(request=request, actor=user, note="a shopper is not staff")
    request.refresh_from_db()
    assert request.status == Status.OPEN


def test_the_decision_e_mail_goes_out_once(stocked_sku, operator):
    order = delivered(stocked_sku)
    request = open_for(order)
    aftersales.reject(request=request, actor=operator, note="no")
    mail.outbox.clear()
    assert aftersales.send_email(request_id=request.pk, kind=aftersales.DECIDED) is False  # a retried task
    assert mail.outbox == []
