"""Payments and refunds.

* :func:`start_payment` opens a payment attempt for an order with a provider.
* :func:`confirm_payment` is what a *verified* gateway message (or the sandbox's Pay button) calls.
  It is idempotent per payment: the same confirmation twice, or concurrently, confirms once. A
  second successful payment for an order that is already paid is refunded automatically.
  The buyer is told by e-mail (:func:`send_duplicate_payment_email`), and
  :func:`refund_duplicate_payments` is the backstop the periodic scan calls (payments/reconcile.py).
* :func:`request_refund` records a refund and queues its execution; :func:`execute_refund` calls
  the gateway *outside* any database transaction, then records the result. A refund whose outcome
  is unknown (timeout, gateway busy) stays ``processing`` and is reconciled with the same
  ``out_refund_no`` until the gateway gives a final answer; it is never guessed to have failed.

Lock order (docs/ARCHITECTURE.md): Order → Payment → CardCode.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext

from kameng.money import fen_to_yuan_str
from kameng.tasks import enqueue_on_commit
from orders import locks as orders_locks
from orders import services as orders
from orders.models import Fulfilment, Order
from orders.payment_port import PaymentRefused
from payments import locks, providers
from payments.models import Payment, Refund, Settlement
from payments.selectors import paying_payment

logger = logging.getLogger(__name__)


class PaymentError(PaymentRefused):
    """A payment cannot be started or confirmed; worded for the shopper or the operator.

    ``user_message`` (translated) is what the payment views show the shopper; without it they say
    that the order cannot be paid this way right now."""

    def __init__(self, message: str, *, user_message: str = ""):
        super().__init__(message)
        self.user_message = user_message


def _number(prefix: str) -> str:
    return f"{prefix}{timezone.localtime():%y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"


def start_payment(
    *, order: Order, provider_name: str, request=None, method: str = ""
) -> tuple[Payment, providers.StartResult]:
    """Open a new attempt (its own ``out_trade_no``) and ask the provider how the buyer pays.

    ``method`` picks one of the provider's extra ways (e.g. Alipay's ``qr``). The gateway is called
    after the row is committed and outside any transaction; if it refuses, the attempt is failed.
    """
    if orders.effective_status(order) != Order.Status.PENDING_PAYMENT:
        raise PaymentError(
            "This order can no longer be paid.", user_message=gettext("This order can no longer be paid.")
        )
    provider = providers.get(provider_name)
    if method and method not in dict(provider.methods):
        raise PaymentError(f"{provider.name} has no payment method {method!r}")
    payment = Payment.objects.create(
        order=order, provider=provider.name, out_trade_no=_number("P"), amount_fen=order.total_fen
    )
    try:
        result = provider.start(payment=payment, request=request, **({"method": method} if method else {}))
    except providers.ProviderError:
        fail_payment(out_trade_no=payment.out_trade_no, provider=provider.name)
        raise
    return payment, result


class Confirmation(StrEnum):
    CONFIRMED = "confirmed"
    LATE = "late"
    REPEATED = "repeated"  # this payment was already confirmed: nothing to do, answer success
    DUPLICATE = "duplicate"  # another payment already paid the order: this one is refunded
    AMOUNT_MISMATCH = "amount_mismatch"
    UNKNOWN = "unknown"
    NO_AMOUNT = "no_amount"  # (reconciliation) the gateway says paid but gives no amount: operators look


class RefundStep(StrEnum):
    """What one call of the refund services did."""

    CLAIMED = "claimed"  # this call sends the refund
    SKIPPED = "skipped"  # not requested any more (another call has it, or it is final)
    WAITING = "waiting"  # another refund of the paid-out order runs first
    PENDING = "pending"  # the gateway accepted it or cannot tell yet: reconciliation asks
    REPEATED = "repeated"  # its final answer was already recorded
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def confirm_payment(*, out_trade_no: str, amount_fen: int, gateway_trade_no: str, provider: str) -> str:
    """Record a verified successful payment. Safe to call any number of times, concurrently."""
    found = Payment.objects.filter(out_trade_no=out_trade_no, provider=provider).values("pk", "order_id").first()
    if found is None:
        logger.warning("payment confirmation for unknown trade %s (%s)", out_trade_no, provider)
        return Confirmation.UNKNOWN
    with transaction.atomic():
        order, payment = locks.lock_order_and_payment(order_id=found["order_id"], payment_id=found["pk"])
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


class WalletPaymentRefused(providers.ProviderError):
    """The wallet cannot pay this order; ``user_message`` is worded for the shopper."""

    def __init__(self, user_message: str):
        super().__init__(user_message)
        self.user_message = user_message


def pay_from_wallet(*, payment: Payment, user) -> str:
    """Debit the buyer's wallet and confirm ``payment`` in one transaction (the ``balance`` provider).

    Only the order's signed-in buyer may, only while the order is payable, only with the balance to
    cover it; otherwise nothing changes and :class:`WalletPaymentRefused` says why. Lock order:
    Order → Payment → Wallet. A double click finds the order paid under the order lock.
    """
    from accounts import wallet

    with transaction.atomic():
        order, payment = locks.lock_order_and_payment(order_id=payment.order_id, payment_id=payment.pk)
        if order.kind == Order.Kind.TOP_UP:  # a membership may be paid from the wallet, a top-up not
            raise WalletPaymentRefused(gettext("A top-up is paid through a payment gateway, not from the wallet."))
        if user is None or not user.is_authenticated or order.buyer_id != user.pk:
            raise WalletPaymentRefused(gettext("Only the signed-in buyer can pay an order from their wallet."))
        if orders.effective_status(order) != Order.Status.PENDING_PAYMENT or payment.status != Payment.Status.CREATED:
            raise WalletPaymentRefused(gettext("This order can no longer be paid."))
        try:
            entry = wallet.debit(
                user=user, amount_fen=payment.amount_fen, kind=wallet.Kind.PAYMENT, reference=payment.out_trade_no,
                order=order, note=order.number,
            )  # fmt: skip
        except wallet.InsufficientBalance as exc:
            raise WalletPaymentRefused(
                gettext("Your wallet holds %(balance)s, not enough for %(total)s.")
                % {"balance": f"¥{fen_to_yuan_str(exc.balance_fen)}", "total": f"¥{fen_to_yuan_str(exc.wanted_fen)}"}
            ) from None
        outcome = confirm_payment(
            out_trade_no=payment.out_trade_no, amount_fen=payment.amount_fen, gateway_trade_no=f"W{entry.pk}",
            provider=payment.provider,
        )  # fmt: skip
        if outcome != Confirmation.CONFIRMED:  # e.g. the deadline passed a moment ago: refuse, keep nothing
            raise WalletPaymentRefused(gettext("This order can no longer be paid."))
    return outcome


# -- refunds ---------------------------------------------------------------------------------------------


def refundable_fen(payment: Payment) -> int:
    pending = payment.refunds.exclude(status=Refund.Status.FAILED).aggregate(total=Sum("amount_fen"))["total"] or 0
    return payment.amount_fen - pending


def _create_refund(
    *,
    order: Order,
    payment: Payment,
    amount_fen: int,
    reason: str,
    note: str = "",
    actor=None,
    route: str = Refund.Route.ORIGINAL,
) -> Refund:
    """Create the refund row (caller holds the order and payment locks) and queue its execution."""
    if amount_fen <= 0 or amount_fen > refundable_fen(payment):
        raise PaymentError(f"cannot refund {amount_fen} fen of payment {payment.out_trade_no}")
    if order.kind == Order.Kind.TOP_UP and reason != Refund.Reason.DUPLICATE_PAYMENT:
        raise PaymentError(gettext("A top-up is in the buyer's wallet: record a wallet withdrawal instead."))
    if route == Refund.Route.WALLET and order.buyer_id is None:
        raise PaymentError(gettext("A guest order has no wallet: refund it to the original payment route."))
    refund = Refund.objects.create(
        payment=payment, order=order, out_refund_no=_number("R"), amount_fen=amount_fen, reason=reason, note=note,
        requested_by=actor, route=route,
    )  # fmt: skip
    orders.record_event(
        order, kind="refund_requested", actor=actor, note=note,
        data={"out_refund_no": refund.out_refund_no, "amount_fen": amount_fen, "reason": reason, "route": route},
    )  # fmt: skip
    from payments.tasks import execute_refund, send_duplicate_payment_email

    enqueue_on_commit(execute_refund, refund_id=refund.pk)
    if reason == Refund.Reason.DUPLICATE_PAYMENT:
        enqueue_on_commit(send_duplicate_payment_email, refund_id=refund.pk)
    return refund


def request_refund(
    *, payment: Payment, amount_fen: int, reason: str, note: str = "", actor=None, route: str = Refund.Route.ORIGINAL
) -> Refund:
    with transaction.atomic():
        order, payment = locks.lock_order_and_payment(order_id=payment.order_id, payment_id=payment.pk)
        if payment.status != Payment.Status.PAID:
            raise PaymentError("only a completed payment can be refunded")
        return _create_refund(
            order=order, payment=payment, amount_fen=amount_fen, reason=reason, note=note, actor=actor, route=route
        )


def refund_in_full_by_operator(*, order_id: int, note: str, actor, route: str = Refund.Route.ORIGINAL) -> bool:
    """An operator gives back everything left of an order's payment: the order goes to ``refunding``
    with the refund row, in one transaction. False when there is nothing to refund."""
    with transaction.atomic():
        locked = orders_locks.lock_order(order_id)
        refund = refund_order_in_full(
            order_id=locked.pk, reason=Refund.Reason.OPERATOR, note=note, actor=actor, route=route
        )
        if refund is None:
            return False
        orders.transition(
            locked,
            source=[Order.Status.PAID, Order.Status.PROCESSING, Order.Status.DELIVERED],
            target=Order.Status.REFUNDING,
            kind="operator_refund",
            refunding_reason=Order.RefundingReason.OPERATOR,
            actor=actor,
            note=note,
            data={"out_refund_no": refund.out_refund_no, "amount_fen": refund.amount_fen},
        )
    return True


def refund_amount_by_operator(*, order: Order, amount_fen: int, note: str, actor, route: str) -> Refund:
    """An operator gives back part of an order's payment; the order stays as it is."""
    payment = paying_payment(order)
    if payment is None:
        raise PaymentError(gettext("This order has no completed payment."))
    return request_refund(
        payment=payment, amount_fen=amount_fen, reason=Refund.Reason.OPERATOR, note=note, actor=actor, route=route
    )


def refund_order_in_full(
    *, order_id: int, reason: str, note: str = "", actor=None, route: str = Refund.Route.ORIGINAL
) -> Refund | None:
    """Refund what is left of an order's payment — once per reason, however often it is called. An
    operator's "refund in full" may follow their own partial refunds: it gives back the rest (a second
    click finds nothing left, since a refund under way counts as refunded)."""
    with transaction.atomic():
        order = orders_locks.lock_order(order_id)
        payment = paying_payment(order)
        if payment is None:
            return None
        payment = locks.lock_payment(payment.pk)
        if (
            reason != Refund.Reason.OPERATOR
            and payment.refunds.filter(reason=reason).exclude(status=Refund.Status.FAILED).exists()
        ):
            return None
        amount = refundable_fen(payment)
        if amount <= 0:
            return None
        return _create_refund(
            order=order, payment=payment, amount_fen=amount, reason=reason, note=note, actor=actor, route=route
        )


MAX_STRANDED_REFUND_ATTEMPTS = 3


def refund_stranded_orders(*, older_than_seconds: int = 300) -> int:
    """Orders left in ``refunding`` (could not deliver) without a refund under way get one.

    The backstop behind the refund task that delivery queues: a broker outage or a crash between
    the two must not leave a paid buyer waiting. After a few failed refunds operators take over
    (the order's events and the refund list in admin show it)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    active = Refund.objects.filter(
        order=OuterRef("pk"), status__in=[Refund.Status.REQUESTED, Refund.Status.PROCESSING, Refund.Status.SUCCEEDED]
    )
    failed = Refund.objects.filter(order=OuterRef("pk"), status=Refund.Status.FAILED)
    stranded = (
        Order.objects.filter(
            status=Order.Status.REFUNDING,
            refunding_reason=Order.RefundingReason.OUT_OF_STOCK,
            status_changed_at__lt=cutoff,
        )
        .exclude(Exists(active))
        .annotate(failures=Subquery(failed.values("order").annotate(n=Count("pk")).values("n")))
        .filter(Q(failures__isnull=True) | Q(failures__lt=MAX_STRANDED_REFUND_ATTEMPTS))
        .values_list("pk", flat=True)[:200]
    )
    requested = 0
    for order_id in list(stranded):
        if refund_order_in_full(order_id=order_id, reason=Refund.Reason.OUT_OF_STOCK) is not None:
            requested += 1
    if requested:
        logger.warning("requested refunds for %d orders left in refunding", requested)
    return requested


def refund_returns(refund: Refund) -> list[dict]:
    """What merchants give back at the gateway first, when the refund reaches money already split out."""
    if refund.route == Refund.Route.WALLET:
        return []
    from payments.settlement import planned_returns

    return planned_returns(refund)


def refund_provider_name(refund: Refund) -> str:
    """Who pays a refund back: the wallet for refunds routed there, else the payment's provider."""
    return "balance" if refund.route == Refund.Route.WALLET else refund.payment.provider


def refund_provider(refund: Refund) -> providers.Provider:
    return providers.get(refund_provider_name(refund))


def _claim_refund(refund_id: int) -> str:
    """``claimed``, ``skipped`` (not requested any more) or ``waiting``.

    Once an order's money has been paid out to merchants, what a refund takes back from them
    (:func:`refund_returns`) depends on the refunds recorded before it, so such refunds run one at a
    time per order: one waits (stays ``requested``) while another of the same order is processing,
    and is queued again when that one is final (``record_refund_result``) or by reconciliation."""
    with transaction.atomic():
        order_id = locks.lock_order_of_refund(refund_id).pk  # serialises claims of one order's refunds
        paid_out = Settlement.objects.filter(order_id=order_id, status=Settlement.Status.SETTLED).exists()
        busy = Refund.objects.filter(order_id=order_id, status=Refund.Status.PROCESSING).exclude(pk=refund_id)
        if paid_out and busy.exists():
            return RefundStep.WAITING
        claimed = Refund.objects.filter(pk=refund_id, status=Refund.Status.REQUESTED).update(
            status=Refund.Status.PROCESSING
        )
    return RefundStep.CLAIMED if claimed else RefundStep.SKIPPED


def execute_refund(*, refund_id: int) -> str:
    """Send a requested refund to its gateway, then record the answer."""
    claim = _claim_refund(refund_id)
    if claim != RefundStep.CLAIMED:
        return claim
    refund = Refund.objects.select_related("payment", "order").get(pk=refund_id)
    try:
        result = refund_provider(refund).refund(refund=refund, returns=refund_returns(refund))  # outside transactions
    except providers.GatewayUnavailable as exc:
        result = providers.RefundResult(succeeded=False, pending=True, failure=str(exc))
    except providers.ProviderError as exc:
        result = providers.RefundResult(succeeded=False, failure=str(exc))
    if result.pending:
        # Accepted or unknown: reconciliation (payments/reconcile.py) asks the gateway until it is final.
        Refund.objects.filter(pk=refund.pk, status=Refund.Status.PROCESSING).update(
            gateway_refund_no=result.gateway_refund_no or refund.gateway_refund_no,
            next_query_at=timezone.now() + timedelta(seconds=60),
        )
        return RefundStep.PENDING
    return record_refund_result(
        refund_id=refund.pk, succeeded=result.succeeded, gateway_refund_no=result.gateway_refund_no,
        failure=result.failure,
    )  # fmt: skip


def record_refund_result(*, refund_id: int, succeeded: bool, gateway_refund_no: str = "", failure: str = "") -> str:
    """The gateway's final answer on a refund (from execute, a notification or reconciliation)."""
    with transaction.atomic():
        refund = Refund.objects.select_related("payment").get(pk=refund_id)
        order = orders_locks.lock_order(refund.order_id)
        locks.lock_payment(refund.payment_id)
        final = Refund.Status.SUCCEEDED if succeeded else Refund.Status.FAILED
        changed = Refund.objects.filter(
            Q(status=Refund.Status.PROCESSING) | Q(status=Refund.Status.REQUESTED), pk=refund.pk
        ).update(status=final, gateway_refund_no=gateway_refund_no, failure=failure, finished_at=timezone.now())
        if not changed:
            return RefundStep.REPEATED
        from payments.tasks import execute_refund as execute

        for waiting in Refund.objects.filter(order=order, status=Refund.Status.REQUESTED).exclude(pk=refund.pk):
            enqueue_on_commit(execute, refund_id=waiting.pk)  # it may have waited for this one
        if not succeeded:
            orders.record_event(order, kind="refund_failed", note=failure, data={"out_refund_no": refund.out_refund_no})
            if order.status == Order.Status.REFUNDING and Fulfilment.objects.filter(order=order).exists():
                # An after-sales refund the gateway refused: the buyer still has the goods, so the
                # order is delivered again (operators see the failed refund and decide).
                orders.transition(
                    order, source=[Order.Status.REFUNDING], target=Order.Status.DELIVERED, kind="refund_failed_reverted"
                )
            return RefundStep.FAILED
        Payment.objects.filter(pk=refund.payment_id).update(refunded_fen=F("refunded_fen") + refund.amount_fen)
        from payments.settlement import reverse_for_refund

        reverse_for_refund(refund=refund, order=order)  # the ledger, and the split when there is one
        if refund.reason != Refund.Reason.DUPLICATE_PAYMENT:
            orders.record_refund(order_id=order.pk, amount_fen=refund.amount_fen, note=refund.get_reason_display())
        else:
            orders.record_event(order, kind="duplicate_payment_refunded", data={"out_refund_no": refund.out_refund_no})
    return RefundStep.SUCCEEDED


# -- duplicate payments ----------------------------------------------------------------------------------

MAX_DUPLICATE_REFUND_ATTEMPTS = 3  # after that many failed refunds of one duplicate, operators take over


def refund_duplicate_payments(*, order_id: int) -> list[Refund]:
    """Refund every successful payment of an order except the one that paid it, once each.

    The backstop behind :func:`confirm_payment` (the periodic scan calls it): safe to run any number
    of times. A duplicate whose refunds failed is tried again, up to a limit.
    """
    with transaction.atomic():
        order = orders_locks.lock_order(order_id)
        paid = locks.lock_paid_payments(order)
        if len(paid) < 2:
            return []
        keeper = min(paid, key=lambda payment: (payment.paid_at or timezone.now(), payment.pk))
        created = []
        for payment in paid:
            if payment.pk == keeper.pk:
                continue
            duplicates = payment.refunds.filter(reason=Refund.Reason.DUPLICATE_PAYMENT)
            if duplicates.exclude(status=Refund.Status.FAILED).exists():
                continue
            if duplicates.count() >= MAX_DUPLICATE_REFUND_ATTEMPTS:
                logger.error("duplicate payment %s: refunds keep failing, operators must act", payment.out_trade_no)
                continue
            amount = refundable_fen(payment)
            if amount <= 0:
                continue
            orders.record_event(
                order, kind="duplicate_payment", data={"out_trade_no": payment.out_trade_no, "found_by": "scan"}
            )
            created.append(
                _create_refund(order=order, payment=payment, amount_fen=amount, reason=Refund.Reason.DUPLICATE_PAYMENT)
            )
        return created


def send_duplicate_payment_email(*, refund_id: int) -> bool:
    """Tell the buyer they paid twice and that the extra payment goes back (sent once per refund)."""
    claimed = Refund.objects.filter(
        pk=refund_id, reason=Refund.Reason.DUPLICATE_PAYMENT, buyer_notified_at__isnull=True
    ).update(buyer_notified_at=timezone.now())
    if not claimed:
        return False
    refund = Refund.objects.select_related("order", "payment").get(pk=refund_id)
    told = Refund.objects.filter(
        payment_id=refund.payment_id, reason=Refund.Reason.DUPLICATE_PAYMENT, buyer_notified_at__isnull=False
    ).exclude(pk=refund.pk)
    if told.exists():
        return False  # a retry of a failed refund: the buyer already knows
    order = refund.order
    from payments.providers import provider_class

    cls = provider_class(refund.payment.provider)
    with translation.override(order.language or settings.LANGUAGE_CODE):
        context = {
            "order": order,
            "refund": refund,
            "provider": cls.label if cls else refund.payment.provider,
            "order_url": settings.SITE_URL.rstrip("/") + order.get_absolute_url(),
            "shop_name": settings.SHOP_NAME,
        }
        subject = render_to_string("orders/email/duplicate_payment_subject.txt", context).strip()
        text = render_to_string("orders/email/duplicate_payment.txt", context)
        html = render_to_string("orders/email/duplicate_payment.html", context)
    message = EmailMultiAlternatives(subject, text, None, [order.email])
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception:
        # Not sent: let the task's retry (or a later one) claim it again.
        Refund.objects.filter(pk=refund_id).update(buyer_notified_at=None)
        raise
    return True
