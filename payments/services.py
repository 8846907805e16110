"""Payments and refunds.

* :func:`start_payment` opens a payment attempt for an order with a provider.
* :func:`confirm_payment` is what a *verified* gateway message (or the sandbox's Pay button) calls.
  It is idempotent per payment: the same confirmation twice, or concurrently, confirms once. A
  second successful payment for an order that is already paid is refunded automatically.
* :func:`request_refund` records a refund and queues its execution; :func:`execute_refund` calls
  the gateway *outside* any database transaction, then records the result.

Lock order (docs/ARCHITECTURE.md): Order → Payment → CardCode.
"""

from __future__ import annotations

import logging
import secrets

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from kameng.tasks import enqueue_on_commit
from orders import services as orders
from orders.models import Order
from payments import providers
from payments.models import Payment, Refund

logger = logging.getLogger(__name__)


class PaymentError(Exception):
    """A payment cannot be started or confirmed; worded for the shopper or the operator."""


def _number(prefix: str) -> str:
    return f"{prefix}{timezone.localtime():%y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"


def start_payment(*, order: Order, provider_name: str, request=None) -> tuple[Payment, providers.StartResult]:
    if orders.effective_status(order) != Order.Status.PENDING_PAYMENT:
        raise PaymentError("This order can no longer be paid.")
    provider = providers.get(provider_name)
    payment = Payment.objects.create(
        order=order, provider=provider.name, out_trade_no=_number("P"), amount_fen=order.total_fen
    )
    return payment, provider.start(payment=payment, request=request)


class Confirmation:
    CONFIRMED = "confirmed"
    LATE = "late"
    REPEATED = "repeated"  # this payment was already confirmed: nothing to do, answer success
    DUPLICATE = "duplicate"  # another payment already paid the order: this one is refunded
    AMOUNT_MISMATCH = "amount_mismatch"
    UNKNOWN = "unknown"


def confirm_payment(*, out_trade_no: str, amount_fen: int, gateway_trade_no: str, provider: str) -> str:
    """Record a verified successful payment. Safe to call any number of times, concurrently."""
    found = Payment.objects.filter(out_trade_no=out_trade_no, provider=provider).values("pk", "order_id").first()
    if found is None:
        logger.warning("payment confirmation for unknown trade %s (%s)", out_trade_no, provider)
        return Confirmation.UNKNOWN
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=found["order_id"])
        payment = Payment.objects.select_for_update().get(pk=found["pk"])
        if payment.status == Payment.Status.PAID:
            return Confirmation.REPEATED
        if amount_fen != payment.amount_fen:
            orders.record_event(
                order, kind="payment_amount_mismatch", data={"out_trade_no": out_trade_no, "paid_fen": amount_fen}
            )
            return Confirmation.AMOUNT_MISMATCH
        Payment.objects.filter(pk=payment.pk).update(
            status=Payment.Status.PAID, gateway_trade_no=gateway_trade_no, paid_at=timezone.now()
        )
        outcome = orders.confirm_paid(order=order, amount_fen=amount_fen, payment_ref=out_trade_no)
        if outcome == orders.PaidOutcome.ALREADY_PAID:
            orders.record_event(order, kind="duplicate_payment", data={"out_trade_no": out_trade_no})
            _create_refund(
                order=order, payment=payment, amount_fen=payment.amount_fen, reason=Refund.Reason.DUPLICATE_PAYMENT
            )
            return Confirmation.DUPLICATE
        if outcome == orders.PaidOutcome.AMOUNT_MISMATCH:
            return Confirmation.AMOUNT_MISMATCH
        return Confirmation.LATE if outcome == orders.PaidOutcome.LATE else Confirmation.CONFIRMED


def fail_payment(*, out_trade_no: str, provider: str) -> bool:
    """The buyer gave up or the gateway refused: close the attempt (the order stays payable)."""
    return bool(
        Payment.objects.filter(out_trade_no=out_trade_no, provider=provider, status=Payment.Status.CREATED).update(
            status=Payment.Status.FAILED, closed_at=timezone.now()
        )
    )


# -- refunds ---------------------------------------------------------------------------------------------


def refundable_fen(payment: Payment) -> int:
    pending = payment.refunds.exclude(status=Refund.Status.FAILED).aggregate(total=Sum("amount_fen"))["total"] or 0
    return payment.amount_fen - pending


def _create_refund(
    *, order: Order, payment: Payment, amount_fen: int, reason: str, note: str = "", actor=None
) -> Refund:
    """Create the refund row (caller holds the order and payment locks) and queue its execution."""
    if amount_fen <= 0 or amount_fen > refundable_fen(payment):
        raise PaymentError(f"cannot refund {amount_fen} fen of payment {payment.out_trade_no}")
    refund = Refund.objects.create(
        payment=payment, order=order, out_refund_no=_number("R"), amount_fen=amount_fen, reason=reason, note=note,
        requested_by=actor,
    )  # fmt: skip
    orders.record_event(
        order, kind="refund_requested", actor=actor, note=note,
        data={"out_refund_no": refund.out_refund_no, "amount_fen": amount_fen, "reason": reason},
    )  # fmt: skip
    from payments.tasks import execute_refund

    enqueue_on_commit(execute_refund, refund_id=refund.pk)
    return refund


def request_refund(*, payment: Payment, amount_fen: int, reason: str, note: str = "", actor=None) -> Refund:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status != Payment.Status.PAID:
            raise PaymentError("only a completed payment can be refunded")
        return _create_refund(
            order=order, payment=payment, amount_fen=amount_fen, reason=reason, note=note, actor=actor
        )


def paying_payment(order: Order) -> Payment | None:
    """The payment that paid the order (the first successful one; later ones are duplicates)."""
    return order.payments.filter(status=Payment.Status.PAID).order_by("paid_at", "pk").first()


def refund_order_in_full(*, order_id: int, reason: str, note: str = "", actor=None) -> Refund | None:
    """Refund what is left of an order's payment — once per reason, however often it is called."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        payment = paying_payment(order)
        if payment is None:
            return None
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.refunds.filter(reason=reason).exclude(status=Refund.Status.FAILED).exists():
            return None
        amount = refundable_fen(payment)
        if amount <= 0:
            return None
        return _create_refund(order=order, payment=payment, amount_fen=amount, reason=reason, note=note, actor=actor)


def execute_refund(*, refund_id: int) -> str:
    """Send a requested refund to its gateway, then record the answer."""
    claimed = Refund.objects.filter(pk=refund_id, status=Refund.Status.REQUESTED).update(
        status=Refund.Status.PROCESSING
    )
    if not claimed:
        return "skipped"
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    try:
        result = providers.get(refund.payment.provider).refund(refund=refund)  # no transaction open here
    except providers.ProviderError as exc:
        result = providers.RefundResult(succeeded=False, failure=str(exc))
    if result.pending:
        Refund.objects.filter(pk=refund.pk).update(gateway_refund_no=result.gateway_refund_no)
        return "pending"
    return record_refund_result(
        refund_id=refund.pk, succeeded=result.succeeded, gateway_refund_no=result.gateway_refund_no,
        failure=result.failure,
    )  # fmt: skip


def record_refund_result(*, refund_id: int, succeeded: bool, gateway_refund_no: str = "", failure: str = "") -> str:
    """The gateway's final answer on a refund (from execute, a notification or reconciliation)."""
    with transaction.atomic():
        refund = Refund.objects.select_related("payment").get(pk=refund_id)
        order = Order.objects.select_for_update().get(pk=refund.order_id)
        Payment.objects.select_for_update().filter(pk=refund.payment_id).first()
        final = Refund.Status.SUCCEEDED if succeeded else Refund.Status.FAILED
        changed = Refund.objects.filter(
            Q(status=Refund.Status.PROCESSING) | Q(status=Refund.Status.REQUESTED), pk=refund.pk
        ).update(status=final, gateway_refund_no=gateway_refund_no, failure=failure, finished_at=timezone.now())
        if not changed:
            return "repeated"
        if not succeeded:
            orders.record_event(order, kind="refund_failed", note=failure, data={"out_refund_no": refund.out_refund_no})
            return "failed"
        Payment.objects.filter(pk=refund.payment_id).update(refunded_fen=F("refunded_fen") + refund.amount_fen)
        if refund.reason != Refund.Reason.DUPLICATE_PAYMENT:
            orders.record_refund(order_id=order.pk, amount_fen=refund.amount_fen, note=refund.get_reason_display())
        else:
            orders.record_event(order, kind="duplicate_payment_refunded", data={"out_refund_no": refund.out_refund_no})
    return "succeeded"
