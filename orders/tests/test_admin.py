"""The back office for orders: merchant scoping, filters, actions, export, the manual-delivery queue,
after-sales decisions, and read-only payments for operators."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from catalog.models import BuyerField, Product
from orders import aftersales, selectors, services
from orders.models import AfterSalesRequest, Order, OrderItemCode
from orders.tests.conftest import delivered, pay, place
from payments.models import Refund

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(client, user):
    client.force_login(user)
    client.cookies["django_language"] = "en"
    return client


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def action(client, model: str, name: str, ids, **extra):
    data = {"action": name, "_selected_action": [str(pk) for pk in ids], **extra}
    return client.post(url(f"orders_{model}_changelist"), data, follow=True)


def numbers_in(response) -> set[str]:
    return {order.number for order in response.context["cl"].result_list}


def codes_of(order) -> list[str]:
    return [secret.code for entry in selectors.delivered_codes(order=order) for secret in entry.secrets]


@pytest.fixture
def shop_orders(demo_shop, stocked_sku):
    """Three delivered orders: ours only (two of our SKUs), theirs only, and a mixed one."""
    ours_too = demo_shop.products["netease-points"].skus.get(label="30元")
    theirs = demo_shop.products["honor-of-kings"].skus.get(label="60点券")

    def order_of(*skus, email):
        placed = services.place_order(
            lines=[services.CartLine(sku_id=sku.pk, quantity=1) for sku in skus], email=email,
            idempotency_key=email,
        )  # fmt: skip
        pay(placed.order)
        placed.order.refresh_from_db()
        return placed.order

    return {
        "ours": order_of(stocked_sku, ours_too, email="ours@example.com"),
        "theirs": order_of(theirs, email="theirs@example.com"),
        "mixed": order_of(stocked_sku, theirs, email="mixed@example.com"),
        "skus": {"ours": stocked_sku, "ours_too": ours_too, "theirs": theirs},
    }


# --- scoping --------------------------------------------------------------------------------------
def test_merchant_staff_see_orders_of_their_goods_once(client, merchant_staff, other_merchant_staff, shop_orders):
    response = signed_in(client, merchant_staff).get(url("orders_order_changelist"))
    assert response.status_code == 200
    numbers = [order.number for order in response.context["cl"].result_list]
    assert sorted(numbers) == sorted([shop_orders["ours"].number, shop_orders["mixed"].number])  # no duplicate
    response = signed_in(client, other_merchant_staff).get(url("orders_order_changelist"))
    assert numbers_in(response) == {shop_orders["theirs"].number, shop_orders["mixed"].number}


def test_another_merchants_order_is_404(client, merchant_staff, shop_orders):
    signed_in(client, merchant_staff)
    theirs = shop_orders["theirs"]
    assert client.get(url("orders_order_change", theirs.pk)).status_code == 404
    assert client.get(url("orders_order_history", theirs.pk)).status_code == 404
    assert client.get(url("orders_order_manual_delivery", theirs.pk)).status_code == 404
    assert client.get(url("orders_order_change", shop_orders["ours"].pk)).status_code == 200


def test_operators_see_every_order(client, operator, demo_shop, shop_orders):
    response = signed_in(client, operator).get(url("orders_order_changelist"))
    assert numbers_in(response) == {shop_orders[k].number for k in ("ours", "theirs", "mixed")}
    response = client.get(url("orders_order_changelist"), {"merchant": demo_shop.other_merchant.pk})
    assert numbers_in(response) == {shop_orders["theirs"].number, shop_orders["mixed"].number}


def test_a_mixed_order_shows_only_the_merchants_own_items_and_only_masks(client, merchant_staff, shop_orders):
    mixed = shop_orders["mixed"]
    response = signed_in(client, merchant_staff).get(url("orders_order_change", mixed.pk))
    html = response.content.decode()
    assert shop_orders["skus"]["ours"].label in html
    assert "王者荣耀点券" not in html  # the other merchant's item
    for code in codes_of(mixed):
        assert code not in html
    own_link = OrderItemCode.objects.get(item__order=mixed, item__sku=shop_orders["skus"]["ours"])
    assert own_link.code.hint in html
    # The page is read-only: no save button, and a POST changes nothing.
    assert 'name="_save"' not in html
    assert client.post(url("orders_order_change", mixed.pk), {"email": "x@example.com"}).status_code == 403
    mixed.refresh_from_db()
    assert mixed.email == "mixed@example.com"


def test_changelist_queries_do_not_grow_with_the_orders(client, merchant_staff, demo_shop, stocked_sku):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url("orders_order_changelist")).status_code == 200
        return len(queries)

    signed_in(client, merchant_staff)
    ours_too = demo_shop.products["netease-points"].skus.get(label="30元")
    lines = [services.CartLine(sku_id=stocked_sku.pk, quantity=1), services.CartLine(sku_id=ours_too.pk, quantity=1)]
    services.place_order(lines=lines, email="first@example.com", idempotency_key="first")
    one = count()
    for n in range(6):
        services.place_order(lines=lines[1:], email=f"more{n}@example.com", idempotency_key=f"more{n}")
    assert count() == one


# --- filters and search ---------------------------------------------------------------------------
def test_filters_by_status_date_and_own_skus(client, merchant_staff, shop_orders):
    pending = place(shop_orders["skus"]["ours_too"], email="pending@example.com").order
    Order.objects.filter(pk=shop_orders["ours"].pk).update(created_at=timezone.now() - timedelta(days=40))
    signed_in(client, merchant_staff)
    changelist = url("orders_order_changelist")

    response = client.get(changelist, {"status__exact": "pending_payment"})
    assert numbers_in(response) == {pending.number}
    since = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)
    response = client.get(changelist, {"created_at__gte": str(since)})  # as the "Past 7 days" link sends it
    assert numbers_in(response) == {shop_orders["mixed"].number, pending.number}

    # The SKU filter offers only the merchant's own SKUs...
    sku_filter = next(
        spec for spec in response.context["cl"].filter_specs if getattr(spec, "parameter_name", None) == "sku"
    )
    offered = {int(value) for value, _label in sku_filter.lookup_choices}
    assert shop_orders["skus"]["ours"].pk in offered and shop_orders["skus"]["theirs"].pk not in offered
    assert not any(getattr(spec, "parameter_name", None) == "merchant" for spec in response.context["cl"].filter_specs)
    # ...and filters by the SKU of any item.
    response = client.get(changelist, {"sku": shop_orders["skus"]["ours"].pk})
    assert numbers_in(response) == {shop_orders["ours"].number, shop_orders["mixed"].number}
    # Asking for another merchant's SKU by hand still shows nothing of theirs.
    response = client.get(changelist, {"sku": shop_orders["skus"]["theirs"].pk})
    assert numbers_in(response) == {shop_orders["mixed"].number}


def test_search_by_number_and_email(client, merchant_staff, shop_orders):
    signed_in(client, merchant_staff)
    response = client.get(url("orders_order_changelist"), {"q": shop_orders["mixed"].number})
    assert numbers_in(response) == {shop_orders["mixed"].number}
    response = client.get(url("orders_order_changelist"), {"q": "OURS@example.com"})
    assert numbers_in(response) == {shop_orders["ours"].number}
    response = client.get(url("orders_order_changelist"), {"q": "theirs@example.com"})
    assert numbers_in(response) == set()


# --- actions --------------------------------------------------------------------------------------
def test_resend_delivery_email_sends_the_same_codes(client, merchant_staff, shop_orders):
    ours = shop_orders["ours"]
    pending = place(shop_orders["skus"]["ours"], email="unpaid@example.com").order
    mail.outbox.clear()
    response = action(signed_in(client, merchant_staff), "order", "resend_delivery_email", [ours.pk, pending.pk])
    assert response.status_code == 200
    [message] = mail.outbox
    assert message.to == ["ours@example.com"]
    assert sorted(codes_of(ours)) == sorted(c for c in codes_of(ours) if c in message.body)
    assert ours.events.get(kind="delivery_email_resent").actor == merchant_staff
    assert "1 order was skipped" in response.content.decode()


def test_another_merchant_cannot_resend_by_posting_ids(client, other_merchant_staff, shop_orders):
    mail.outbox.clear()
    action(signed_in(client, other_merchant_staff), "order", "resend_delivery_email", [shop_orders["ours"].pk])
    assert mail.outbox == []


def test_export_has_the_merchants_order_lines_and_no_codes(client, merchant_staff, shop_orders):
    ours, mixed = shop_orders["ours"], shop_orders["mixed"]
    ours.items.filter(sku=shop_orders["skus"]["ours"]).update(manual_result="=1+1")
    response = action(
        signed_in(client, merchant_staff), "order", "export_xlsx", [ours.pk, mixed.pk, shop_orders["theirs"].pk]
    )
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "no-store" in response["Cache-Control"]
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    rows = list(book.active.iter_rows(values_only=True))
    header, lines = rows[0], rows[1:]
    assert "Order number" in header and "Amount (fen)" in header
    got = sorted((row[0], row[8]) for row in lines)
    assert got == sorted(
        [(ours.number, "测试面额"), (ours.number, "30元"), (mixed.number, "测试面额")]
    )  # their line of the mixed order is not in it
    cells = {str(cell) for row in lines for cell in row if cell is not None}
    for order in (ours, mixed):
        for link in OrderItemCode.objects.filter(item__order=order).select_related("code"):
            assert link.code.hint not in cells
        for code in codes_of(order):
            assert not any(code in cell for cell in cells)
    [formula] = [c for row in book.active.iter_rows() for c in row if c.value == "=1+1"]
    assert formula.data_type == "s"  # what a buyer or merchant typed stays text, never a formula


def test_refund_in_full_is_for_operators_and_asks_a_reason(client, operator, merchant_staff, shop_orders):
    ours = shop_orders["ours"]
    response = action(signed_in(client, merchant_staff), "order", "refund_in_full", [ours.pk])
    assert not Refund.objects.exists()
    assert "refund_in_full" not in response.content.decode()

    signed_in(client, operator)
    response = action(client, "order", "refund_in_full", [ours.pk])
    assert response.status_code == 200 and "confirm-action-form" in response.content.decode()
    response = action(client, "order", "refund_in_full", [ours.pk], confirm="yes", note="")
    assert not Refund.objects.exists()  # a reason is required
    action(client, "order", "refund_in_full", [ours.pk], confirm="yes", note="商户跑路，全额退款")
    refund = Refund.objects.get()
    assert (refund.reason, refund.status, refund.amount_fen, refund.note) == (
        "operator", "succeeded", ours.total_fen, "商户跑路，全额退款",
    )  # fmt: skip
    ours.refresh_from_db()
    assert (ours.status, ours.refunded_fen) == (Order.Status.REFUNDED, ours.total_fen)
    kinds = list(ours.events.values_list("kind", flat=True))
    assert kinds.index("operator_refund") < kinds.index("closed_refunded")
    # A second click refunds nothing more.
    action(client, "order", "refund_in_full", [ours.pk], confirm="yes", note="again")
    assert Refund.objects.count() == 1


def test_operator_refunds_a_buyers_order_to_the_wallet_and_a_guest_order_only_the_original_way(
    client, operator, user, stocked_sku, shop_orders
):
    from accounts import wallet

    placed = services.place_order(
        lines=[services.CartLine(sku_id=stocked_sku.pk, quantity=1)], email=user.email, buyer=user,
        idempotency_key="member",
    )  # fmt: skip
    pay(placed.order)
    signed_in(client, operator)

    action(client, "order", "refund_in_full_to_wallet", [placed.order.pk], confirm="yes", note="补偿到余额")

    refund = Refund.objects.get()
    assert (refund.route, refund.status, refund.amount_fen) == ("wallet", "succeeded", placed.order.total_fen)
    assert wallet.balance_fen(user) == placed.order.total_fen
    guest = shop_orders["ours"]
    response = action(client, "order", "refund_in_full_to_wallet", [guest.pk], confirm="yes", note="x")
    assert "Guest orders have no wallet" in response.content.decode()
    assert Refund.objects.count() == 1


def test_operator_refunds_an_amount_of_one_order_with_a_reason(client, operator, merchant_staff, shop_orders):
    ours = shop_orders["ours"]
    response = action(signed_in(client, merchant_staff), "order", "refund_amount", [ours.pk])
    assert "refund_amount" not in response.content.decode() and not Refund.objects.exists()

    signed_in(client, operator)
    both = action(client, "order", "refund_amount", [ours.pk, shop_orders["theirs"].pk])
    assert "Select exactly one order" in both.content.decode()
    form = action(client, "order", "refund_amount", [ours.pk])
    assert 'name="amount"' in form.content.decode() and 'name="route"' in form.content.decode()
    too_much = action(
        client, "order", "refund_amount", [ours.pk], confirm="yes", amount="9999", route="original", note="x"
    )
    assert "can still be refunded" in too_much.content.decode() and not Refund.objects.exists()
    no_reason = action(client, "order", "refund_amount", [ours.pk], confirm="yes", amount="1.50", route="original")
    assert no_reason.status_code == 200 and not Refund.objects.exists()

    done = action(
        client, "order", "refund_amount", [ours.pk], confirm="yes", amount="1.50", route="original", note="少发一张"
    )

    assert "Refund of 1.50 yuan requested" in done.content.decode()
    refund = Refund.objects.get()
    assert (refund.amount_fen, refund.status, refund.reason, refund.note) == (150, "succeeded", "operator", "少发一张")
    ours.refresh_from_db()
    assert (ours.status, ours.refunded_fen) == (Order.Status.DELIVERED, 150)  # partly refunded, still delivered
    guest_to_wallet = action(
        client, "order", "refund_amount", [ours.pk], confirm="yes", amount="1.00", route="wallet", note="x"
    )
    assert "A guest order has no wallet" in guest_to_wallet.content.decode() and Refund.objects.count() == 1


# --- manual delivery ------------------------------------------------------------------------------
@pytest.fixture
def manual_order(stocked_sku):
    product = stocked_sku.product
    Product.objects.filter(pk=product.pk).update(delivery_mode=Product.DeliveryMode.MANUAL)
    BuyerField.objects.create(product=product, key="qq", label="QQ号", kind=BuyerField.Kind.QQ)
    placed = services.place_order(
        lines=[services.CartLine(sku_id=stocked_sku.pk, quantity=1, buyer_inputs={"qq": "123456"})],
        email="manual@example.com", idempotency_key="manual",
    )  # fmt: skip
    pay(placed.order)
    placed.order.refresh_from_db()
    assert placed.order.status == Order.Status.PROCESSING
    return placed.order


def test_manual_queue_and_completion_notify_the_buyer(client, merchant_staff, shop_orders, manual_order):
    signed_in(client, merchant_staff)
    response = client.get(url("orders_order_changelist"))
    assert "Manual-delivery queue (1)" in response.content.decode()
    response = client.get(url("orders_order_changelist"), {"queue": "manual"})
    assert numbers_in(response) == {manual_order.number}

    form_url = url("orders_order_manual_delivery", manual_order.pk)
    assert form_url in client.get(url("orders_order_change", manual_order.pk)).content.decode()
    page = client.get(form_url)
    assert page.status_code == 200 and "123456" in page.content.decode()  # the buyer's QQ number
    item = manual_order.items.get()
    response = client.post(form_url, {f"result_{item.pk}": ""})
    assert response.status_code == 200 and Order.objects.get(pk=manual_order.pk).status == "processing"

    mail.outbox.clear()
    response = client.post(form_url, {f"result_{item.pk}": "已充值 5000 点到 QQ 123456"}, follow=True)
    assert response.status_code == 200
    manual_order.refresh_from_db()
    assert manual_order.status == Order.Status.DELIVERED
    assert manual_order.items.get().manual_result == "已充值 5000 点到 QQ 123456"
    assert manual_order.events.get(kind="delivered").actor == merchant_staff
    [message] = mail.outbox
    assert message.to == ["manual@example.com"] and "已充值 5000 点到 QQ 123456" in message.body
    assert numbers_in(client.get(url("orders_order_changelist"), {"queue": "manual"})) == set()


def test_another_merchant_cannot_complete_a_manual_order(client, other_merchant_staff, manual_order):
    response = signed_in(client, other_merchant_staff).post(
        url("orders_order_manual_delivery", manual_order.pk), {f"result_{manual_order.items.get().pk}": "done"}
    )
    assert response.status_code == 404
    manual_order.refresh_from_db()
    assert manual_order.status == Order.Status.PROCESSING


# --- after-sales ----------------------------------------------------------------------------------
@pytest.fixture
def open_request(stocked_sku):
    order = delivered(stocked_sku, 2, email="buyer2@example.com")
    return aftersales.open_request(order=order, reason="invalid_code", message="无效", actor=None)


def test_after_sales_list_and_page_are_scoped(client, merchant_staff, other_merchant_staff, open_request):
    signed_in(client, merchant_staff)
    response = client.get(url("orders_aftersalesrequest_changelist"))
    assert [r.pk for r in response.context["cl"].result_list] == [open_request.pk]
    page = client.get(url("orders_aftersalesrequest_change", open_request.pk)).content.decode()
    assert "无效" in page and url("orders_aftersalesrequest_decide", open_request.pk) in page
    for code in codes_of(open_request.order):
        assert code not in page

    signed_in(client, other_merchant_staff)
    assert client.get(url("orders_aftersalesrequest_changelist")).context["cl"].result_count == 0
    assert client.get(url("orders_aftersalesrequest_change", open_request.pk)).status_code == 404
    assert client.get(url("orders_aftersalesrequest_decide", open_request.pk)).status_code == 404
    response = client.post(url("orders_aftersalesrequest_decide", open_request.pk), {"decision": "reject", "note": "x"})
    assert response.status_code == 404
    for name in ("reject_selected", "refund_selected", "replace_selected"):
        action(client, "aftersalesrequest", name, [open_request.pk], confirm="yes", note="not mine")
    open_request.refresh_from_db()
    assert open_request.status == AfterSalesRequest.Status.OPEN
    assert not Refund.objects.exists()


def test_decide_replace_chosen_code(client, merchant_staff, open_request):
    order = open_request.order
    before = sorted(codes_of(order))
    link = OrderItemCode.objects.filter(item__order=order).order_by("pk").first()
    mail.outbox.clear()
    response = signed_in(client, merchant_staff).post(
        url("orders_aftersalesrequest_decide", open_request.pk),
        {"decision": "replace", "codes": [link.pk], "note": "已更换"},
        follow=True,
    )
    assert response.status_code == 200
    open_request.refresh_from_db()
    assert (open_request.status, open_request.decided_by) == (AfterSalesRequest.Status.REPLACED, merchant_staff)
    after = sorted(codes_of(order))
    assert len(set(before) & set(after)) == 1
    [message] = mail.outbox
    assert message.to == ["buyer2@example.com"]
    # Decided: the decide page now only says so.
    response = client.post(url("orders_aftersalesrequest_decide", open_request.pk), {"decision": "reject", "note": "x"})
    assert response.status_code == 302
    open_request.refresh_from_db()
    assert open_request.status == AfterSalesRequest.Status.REPLACED


def test_decide_partial_refund_in_yuan(client, merchant_staff, open_request):
    signed_in(client, merchant_staff)
    decide = url("orders_aftersalesrequest_decide", open_request.pk)
    assert "¥20.00" in client.get(decide).content.decode()  # what may be refunded
    response = client.post(decide, {"decision": "refund", "amount": "5.001"})
    assert response.status_code == 200 and "Enter an amount in yuan" in response.content.decode()
    response = client.post(decide, {"decision": "refund", "amount": "30"})
    assert "at most ¥20.00" in response.content.decode()
    assert not Refund.objects.exists()
    client.post(decide, {"decision": "refund", "amount": "5.50", "note": "部分退款"})
    refund = Refund.objects.get()
    assert (refund.amount_fen, refund.reason, refund.status) == (550, "after_sales", "succeeded")
    order = Order.objects.get(pk=open_request.order_id)
    assert (order.status, order.refunded_fen) == (Order.Status.DELIVERED, 550)


def test_decide_reject_needs_a_note(client, merchant_staff, open_request):
    signed_in(client, merchant_staff)
    decide = url("orders_aftersalesrequest_decide", open_request.pk)
    response = client.post(decide, {"decision": "reject", "note": " "})
    assert response.status_code == 200 and "Say why" in response.content.decode()
    open_request.refresh_from_db()
    assert open_request.status == AfterSalesRequest.Status.OPEN
    client.post(decide, {"decision": "reject", "note": "已使用"})
    open_request.refresh_from_db()
    assert (open_request.status, open_request.decision_note) == (AfterSalesRequest.Status.REJECTED, "已使用")


def test_bulk_actions_decide_each_request_once(client, operator, open_request):
    signed_in(client, operator)
    response = action(client, "aftersalesrequest", "reject_selected", [open_request.pk])
    assert "confirm-action-form" in response.content.decode()
    action(client, "aftersalesrequest", "reject_selected", [open_request.pk], confirm="yes", note="")
    open_request.refresh_from_db()
    assert open_request.status == AfterSalesRequest.Status.OPEN  # a note is required
    action(client, "aftersalesrequest", "refund_selected", [open_request.pk], confirm="yes", note="全额退款")
    action(client, "aftersalesrequest", "refund_selected", [open_request.pk], confirm="yes", note="double click")
    open_request.refresh_from_db()
    assert (open_request.status, open_request.refund_fen) == (AfterSalesRequest.Status.REFUNDED, 2000)
    assert Refund.objects.count() == 1


# --- payments, read-only for operators --------------------------------------------------------------
def test_payments_and_refunds_are_read_only_for_operators(client, operator, merchant_staff, shop_orders):
    signed_in(client, operator)
    for model in ("payment", "refund"):
        assert client.get(reverse(f"admin:payments_{model}_changelist")).status_code == 200
    payment = shop_orders["ours"].payments.get()
    page = client.get(reverse("admin:payments_payment_change", args=[payment.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.get(reverse("admin:payments_payment_add")).status_code == 403

    signed_in(client, merchant_staff)
    assert client.get(reverse("admin:payments_payment_changelist")).status_code == 403
    assert client.get(reverse("admin:payments_refund_changelist")).status_code == 403
    # Merchants see the payments app for their own settlements and ledger lines, not payments or refunds.
    index = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:payments_settlement_changelist") in index
    assert reverse("admin:payments_payment_changelist") not in index
    assert reverse("admin:payments_refund_changelist") not in index
