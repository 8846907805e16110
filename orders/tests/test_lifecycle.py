"""Checkout → payment → delivery, one order at a time, with real commits (on-commit work runs)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone, translation

from catalog.models import CardCode, Product
from orders import selectors, services
from orders.models import Fulfilment, Order, OrderEvent, OrderItemCode
from orders.tests.conftest import pay, place
from payments import services as payments
from payments.models import Payment, Refund

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _english():
    """The messages asserted here are the English source strings (the shop's default is Chinese)."""
    with translation.override("en"):
        yield


def expire(order, *, by=timedelta(minutes=1)):
    """Move an order's deadline into the past, as time passing would (order and its held codes)."""
    past = timezone.now() - by
    Order.objects.filter(pk=order.pk).update(reserved_until=past)
    CardCode.objects.filter(order_links__item__order=order, status="reserved").update(reserved_until=past)


def statuses(sku):
    return sorted(sku.codes.values_list("status", flat=True))


def test_checkout_reserves_codes_and_payment_delivers_them(stocked_sku):
    placed = place(stocked_sku, 2, email="Buyer@Example.com")
    order = placed.order
    assert order.status == Order.Status.PENDING_PAYMENT
    assert order.total_fen == 2000 and order.email == "buyer@example.com"
    assert len(placed.query_secret) == 10
    assert statuses(stocked_sku).count("reserved") == 2
    assert order.reserved_until - order.created_at >= timedelta(minutes=14)

    assert pay(order) == payments.Confirmation.CONFIRMED
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert statuses(stocked_sku) == ["available"] * 3 + ["sold"] * 2
    [entry] = selectors.delivered_codes(order=order)
    assert sorted(s.code for s in entry.secrets) == ["T-000", "T-001"]
    assert [m.to for m in mail.outbox] == [["buyer@example.com"]]
    assert "T-000" in mail.outbox[0].body and "T-000" in mail.outbox[0].alternatives[0][0]
    kinds = list(order.events.values_list("kind", flat=True))
    assert kinds == ["placed", "paid", "delivered"]


def test_out_of_stock_is_a_clear_message_and_holds_nothing(stocked_sku):
    with pytest.raises(services.OutOfStock, match="Only 5 left"):
        place(stocked_sku, 6)
    assert statuses(stocked_sku) == ["available"] * 5
    assert not Order.objects.exists()


def test_the_same_form_submitted_twice_places_one_order(stocked_sku):
    first = place(stocked_sku, 1, key="same-key")
    second = place(stocked_sku, 1, key="same-key")
    assert second.order.pk == first.order.pk and second.created is False
    assert Order.objects.count() == 1
    assert statuses(stocked_sku).count("reserved") == 1


def test_unpaid_order_limit_per_email(stocked_sku, settings):
    settings.MAX_UNPAID_ORDERS = 2
    place(stocked_sku, email="hoarder@example.com")
    place(stocked_sku, email="hoarder@example.com")
    with pytest.raises(services.CheckoutError, match="2 unpaid orders"):
        place(stocked_sku, email="HOARDER@example.com")
    place(stocked_sku, email="someone-else@example.com")


def test_unpaid_order_limit_per_ip(stocked_sku, settings):
    settings.MAX_UNPAID_ORDERS = 1
    place(stocked_sku, client_ip="10.1.2.3")
    with pytest.raises(services.CheckoutError):
        place(stocked_sku, client_ip="10.1.2.3")


def test_purchase_limits(stocked_sku, user):
    product = stocked_sku.product
    product.max_per_order, product.max_per_buyer = 2, 3
    product.save()
    with pytest.raises(services.CheckoutError, match="between 1 and 2"):
        place(stocked_sku, 3)
    pay(place(stocked_sku, 2, buyer=user).order)
    with pytest.raises(services.CheckoutError, match="limited to 3 per buyer"):
        place(stocked_sku, 2, buyer=user)


def test_delisted_product_cannot_be_bought(stocked_sku):
    Product.objects.filter(pk=stocked_sku.product_id).update(status=Product.Status.DELISTED)
    with pytest.raises(services.CheckoutError, match="no longer on sale"):
        place(stocked_sku)


def test_cancel_releases_codes_at_once(stocked_sku):
    order = place(stocked_sku, 3).order
    assert services.cancel_order(order=order)
    assert statuses(stocked_sku) == ["available"] * 5
    assert not services.cancel_order(order=order)  # a second cancel changes nothing
    assert OrderItemCode.objects.filter(status="released").count() == 3


def test_expiry_does_not_need_the_sweeper(stocked_sku):
    first = place(stocked_sku, 5).order
    expire(first)
    first.refresh_from_db()
    assert services.effective_status(first) == Order.Status.EXPIRED
    # No sweep has run, yet the codes are for sale again.
    second = place(stocked_sku, 5).order
    assert second.status == Order.Status.PENDING_PAYMENT
    assert OrderItemCode.objects.filter(item__order=first, status="released").count() == 5


def test_sweeper_expires_overdue_orders_and_releases_codes(stocked_sku):
    overdue = place(stocked_sku, 2).order
    fresh = place(stocked_sku, 1).order
    expire(overdue)
    assert services.expire_overdue_orders() == 1
    assert services.expire_overdue_orders() == 0
    overdue.refresh_from_db()
    fresh.refresh_from_db()
    assert (overdue.status, fresh.status) == (Order.Status.EXPIRED, Order.Status.PENDING_PAYMENT)
    assert statuses(stocked_sku) == ["available"] * 4 + ["reserved"]


def test_late_payment_keeps_its_codes_when_nobody_took_them(stocked_sku):
    order = place(stocked_sku, 2).order
    payment, _ = payments.start_payment(order=order, provider_name="sandbox")
    expire(order)
    services.expire_overdue_orders()
    outcome = payments.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=2000, gateway_trade_no="G1", provider="sandbox"
    )
    assert outcome == payments.Confirmation.LATE
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert order.fulfilment.reallocated_codes == 2  # released by the sweep, allocated again


def test_late_payment_gets_fresh_codes_when_its_own_were_taken(stocked_sku):
    late = place(stocked_sku, 2).order
    payment, _ = payments.start_payment(order=late, provider_name="sandbox")
    expire(late)
    taker = place(stocked_sku, 2).order  # takes over the two expired reservations
    assert set(OrderItemCode.objects.filter(item__order=taker).values_list("code_id", flat=True)) == set(
        OrderItemCode.objects.filter(item__order=late).values_list("code_id", flat=True)
    )
    payments.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=2000, gateway_trade_no="G", provider="sandbox"
    )
    late.refresh_from_db()
    assert late.status == Order.Status.DELIVERED
    delivered = set(
        OrderItemCode.objects.filter(item__order=late, status="delivered").values_list("code_id", flat=True)
    )
    held_by_taker = set(
        OrderItemCode.objects.filter(item__order=taker, status="reserved").values_list("code_id", flat=True)
    )
    assert len(delivered) == 2 and delivered.isdisjoint(held_by_taker)
    assert pay(taker) == payments.Confirmation.CONFIRMED  # the taker still gets its own two


def test_late_payment_without_stock_is_refunded_automatically(stocked_sku):
    late = place(stocked_sku, 5).order
    payment, _ = payments.start_payment(order=late, provider_name="sandbox")
    expire(late)
    place(stocked_sku, 5)  # everything taken by another buyer
    payments.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=5000, gateway_trade_no="G", provider="sandbox"
    )
    late.refresh_from_db()
    assert late.status == Order.Status.REFUNDED
    assert late.refunded_fen == 5000
    refund = Refund.objects.get(order=late)
    assert (refund.reason, refund.status, refund.amount_fen) == ("out_of_stock", "succeeded", 5000)
    assert "out of stock" in late.events.get(kind="delivery_failed").note
    assert not Fulfilment.objects.filter(order=late).exists()
    assert CardCode.objects.filter(sku=stocked_sku, status="sold").count() == 0


def test_second_payment_for_a_paid_order_is_refunded(stocked_sku):
    order = place(stocked_sku, 1).order
    first, _ = payments.start_payment(order=order, provider_name="sandbox")
    second, _ = payments.start_payment(order=order, provider_name="sandbox")
    assert (
        payments.confirm_payment(
            out_trade_no=first.out_trade_no, amount_fen=1000, gateway_trade_no="A", provider="sandbox"
        )
        == "confirmed"
    )
    assert (
        payments.confirm_payment(
            out_trade_no=second.out_trade_no, amount_fen=1000, gateway_trade_no="B", provider="sandbox"
        )
        == "duplicate"
    )
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED and order.refunded_fen == 0
    refund = Refund.objects.get()
    assert (refund.payment_id, refund.reason, refund.status) == (second.pk, "duplicate_payment", "succeeded")
    assert Payment.objects.get(pk=second.pk).refunded_fen == 1000
    assert OrderEvent.objects.filter(order=order, kind="duplicate_payment").count() == 1
    assert CardCode.objects.filter(sku=stocked_sku, status="sold").count() == 1


def test_repeated_confirmation_is_answered_but_changes_nothing(stocked_sku):
    order = place(stocked_sku, 1).order
    payment, _ = payments.start_payment(order=order, provider_name="sandbox")
    args = {"out_trade_no": payment.out_trade_no, "amount_fen": 1000, "gateway_trade_no": "G", "provider": "sandbox"}
    assert payments.confirm_payment(**args) == "confirmed"
    assert payments.confirm_payment(**args) == "repeated"
    assert len(mail.outbox) == 1 and Fulfilment.objects.count() == 1


def test_wrong_amount_is_not_a_payment(stocked_sku):
    order = place(stocked_sku, 1).order
    assert pay(order, amount_fen=1) == payments.Confirmation.AMOUNT_MISMATCH
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert order.events.filter(kind="payment_amount_mismatch").exists()


def test_reusable_code_is_handed_out_without_being_used_up(stocked_sku):
    stocked_sku.reusable_code = True
    stocked_sku.save()
    CardCode.objects.filter(sku=stocked_sku).exclude(pk=stocked_sku.codes.first().pk).delete()
    CardCode.objects.filter(sku=stocked_sku).update(reusable=True)
    for _ in range(3):
        pay(place(stocked_sku, 2).order)
    code = stocked_sku.codes.get()
    assert (code.status, code.times_sold) == ("available", 6)
    assert OrderItemCode.objects.filter(status="delivered").count() == 6


def test_manual_items_wait_for_the_merchant(stocked_sku, operator):
    Product.objects.filter(pk=stocked_sku.product_id).update(delivery_mode=Product.DeliveryMode.MANUAL)
    order = place(stocked_sku, 1).order
    pay(order)
    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSING
    assert statuses(stocked_sku) == ["available"] * 5
    item = order.items.get()
    assert services.complete_manual_delivery(order=order, results={item.pk: "已充值到账"}, actor=operator)
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert "已充值到账" in mail.outbox[-1].body


def test_redeliver_stuck_orders_requeues_paid_orders(stocked_sku):
    order = place(stocked_sku, 1).order
    # Paid, but the delivery task was lost (broker down, worker killed).
    Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID, paid_at=timezone.now() - timedelta(minutes=5))
    assert services.redeliver_stuck_orders() == 1  # eager in tests: delivered right here
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    assert services.redeliver_stuck_orders() == 0


def test_query_secret_checks(stocked_sku):
    placed = place(stocked_sku)
    assert services.check_query_secret(placed.order, placed.query_secret)
    assert services.check_query_secret(placed.order, placed.query_secret.lower())
    assert not services.check_query_secret(placed.order, "WRONGWRONG")
    chosen = place(stocked_sku, chosen_secret="my own words")
    assert chosen.query_secret is None
    assert not chosen.order.query_secret_hash.startswith("h$")  # a password hash, not the fast HMAC
    assert services.check_query_secret(chosen.order, "my own words")
    assert not services.check_query_secret(chosen.order, "my own word")


def test_an_order_left_refunding_without_a_refund_gets_one(stocked_sku):
    """Delivery failed and its refund task was lost (broker down): the sweep refunds the buyer."""
    order = place(stocked_sku, 1).order
    payment, _ = payments.start_payment(order=order, provider_name="sandbox")
    Payment.objects.filter(pk=payment.pk).update(status="paid", paid_at=timezone.now(), gateway_trade_no="G")
    # What a failed delivery leaves behind (orders.services._cannot_deliver) when its refund task is lost.
    Order.objects.filter(pk=order.pk).update(
        status=Order.Status.REFUNDING, paid_at=timezone.now(), status_changed_at=timezone.now(),
        refunding_reason=Order.RefundingReason.OUT_OF_STOCK,
    )  # fmt: skip
    assert payments.refund_stranded_orders() == 0  # too recent: its own task may still be on the way
    Order.objects.filter(pk=order.pk).update(status_changed_at=timezone.now() - timedelta(minutes=10))

    assert payments.refund_stranded_orders() == 1
    order.refresh_from_db()
    assert (order.status, order.refunded_fen) == (Order.Status.REFUNDED, 1000)
    assert payments.refund_stranded_orders() == 0


def test_a_refused_after_sales_refund_puts_the_order_back_to_delivered(stocked_sku):
    order = place(stocked_sku, 1).order
    pay(order)
    payment = Payment.objects.get(order=order)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.REFUNDING)
    refund = Refund.objects.create(
        payment=payment, order=order, out_refund_no="R-FAIL", amount_fen=500, reason="after_sales", status="processing"
    )
    assert payments.record_refund_result(refund_id=refund.pk, succeeded=False, failure="gateway said no") == "failed"
    order.refresh_from_db()
    assert (order.status, order.refunded_fen) == (Order.Status.DELIVERED, 0)
    assert order.events.filter(kind="refund_failed_reverted").exists()


# -- the lifecycle table ---------------------------------------------------------------------------------


def test_transitions_outside_the_table_are_refused_before_the_update(stocked_sku):
    order = place(stocked_sku, 1).order
    with pytest.raises(ValueError, match="cannot go from pending_payment to delivered"):
        services.transition(order, source=[Order.Status.PENDING_PAYMENT], target=Order.Status.DELIVERED, kind="x")
    with pytest.raises(ValueError, match="from refunded"):
        services.transition(order, source=[Order.Status.REFUNDED], target=Order.Status.PAID, kind="x")
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert not order.events.exclude(kind="placed").exists()


def test_every_transition_the_services_make_is_in_the_table(stocked_sku):
    """Each status has an entry; a refunded order is final; a late payment may revive a closed one."""
    from orders.models import TRANSITIONS

    assert set(TRANSITIONS) == set(Order.Status.values)
    assert TRANSITIONS[Order.Status.REFUNDED] == frozenset()
    assert Order.Status.PAID in TRANSITIONS[Order.Status.EXPIRED]
    order = place(stocked_sku, 1).order
    before = timezone.now()
    assert services.cancel_order(order=order)
    order.refresh_from_db()
    assert order.status_changed_at >= before


def test_the_stranded_refund_sweep_leaves_an_after_sales_refund_alone(stocked_sku):
    """Only orders that could not be delivered are refunded in full by the sweep: an order refunding
    for after-sales or by an operator, whose refund failed, waits for a person."""
    order = place(stocked_sku, 1).order
    payment, _ = payments.start_payment(order=order, provider_name="sandbox")
    Payment.objects.filter(pk=payment.pk).update(status="paid", paid_at=timezone.now(), gateway_trade_no="G")
    Order.objects.filter(pk=order.pk).update(
        status=Order.Status.REFUNDING, paid_at=timezone.now(),
        status_changed_at=timezone.now() - timedelta(minutes=10),
        refunding_reason=Order.RefundingReason.AFTER_SALES,
    )  # fmt: skip
    assert payments.refund_stranded_orders() == 0
    Order.objects.filter(pk=order.pk).update(refunding_reason=Order.RefundingReason.OUT_OF_STOCK)
    assert payments.refund_stranded_orders() == 1
