"""Periodic reconciliation with the gateways (beat tasks in payments/tasks.py).

* :func:`query_open_payments` — lost notifications (掉单): attempts still open between one minute
  after they started and the order's reservation deadline are queried at the gateway with back-off
  (1, 2, 4, then every 5 minutes); one that was paid is confirmed exactly as a notification would.
* :func:`close_expired_attempts` — attempts still open when their order is past its deadline (or no
  longer waiting for payment: paid by another attempt, cancelled) are queried first — a paid one is
  confirmed (the orders rule handles a late payment) — and otherwise closed at the gateway, so a late
  payment becomes unlikely.
* :func:`scan_duplicate_payments` — the backstop for duplicate payments: orders with more than one
  successful payment and fewer duplicate refunds than extra payments get them.
* :func:`reconcile_refunds` — refunds not final: ``requested`` ones whose task was lost are queued
  again; ``processing`` ones are queried (and sent again with the same ``out_refund_no`` when the
  gateway does not know them) until the gateway gives a final answer.

Gateway calls happen here without any transaction or row lock; results are recorded through the
services, which lock in the documented order. Every function is safe to run late, twice, or
concurrently: the services' conditional updates decide.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from orders.models import Order
from payments import providers, services
from payments.models import Payment, Refund
from payments.providers import Provider, TradeState

logger = logging.getLogger(__name__)

FIRST_QUERY_AFTER = timedelta(minutes=1)
PAYMENT_BACKOFF = (60, 120, 240, 300)  # seconds to the next query after the 1st, 2nd, 3rd, later attempt
REFUND_BACKOFF = (60, 120, 300, 600, 1800, 3600)
STALE_REQUESTED_REFUND = timedelta(minutes=5)
DUPLICATE_LOOKBACK = timedelta(days=3)
C = services.Confirmation
CONFIRMED = {C.CONFIRMED, C.LATE, C.REPEATED, C.DUPLICATE}


def _backoff(attempts: int, steps: tuple[int, ...]) -> timedelta:
    return timedelta(seconds=steps[min(attempts, len(steps) - 1)])


def _supports(provider: Provider, method: str) -> bool:
    return getattr(type(provider), method) is not getattr(Provider, method)


def _provider(name: str) -> Provider | None:
    try:
        return providers.get(name)
    except providers.ProviderError:
        return None


def _due(queryset, now):
    return queryset.filter(Q(next_query_at__isnull=True) | Q(next_query_at__lte=now))


def _postpone(payment: Payment, now) -> None:
    Payment.objects.filter(pk=payment.pk, status=Payment.Status.CREATED).update(
        query_attempts=payment.query_attempts + 1,
        next_query_at=now + _backoff(payment.query_attempts, PAYMENT_BACKOFF),
    )


def _close_locally(payment: Payment) -> bool:
    return bool(
        Payment.objects.filter(pk=payment.pk, status=Payment.Status.CREATED).update(
            status=Payment.Status.CLOSED, closed_at=timezone.now()
        )
    )


def _confirm_from_query(payment: Payment, result: providers.TradeQuery) -> str:
    if result.amount_fen is None:
        logger.error("gateway reports %s paid without an amount; left for operators", payment.out_trade_no)
        return services.Confirmation.NO_AMOUNT
    return services.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=result.amount_fen,
        gateway_trade_no=result.gateway_trade_no, provider=payment.provider,
    )  # fmt: skip


# -- lost notifications ----------------------------------------------------------------------------------


def query_open_payments(*, now=None, limit: int = 200) -> dict[str, int]:
    """Ask the gateway about open attempts between one minute old and their order's deadline."""
    now = now or timezone.now()
    counts = {"queried": 0, "confirmed": 0, "closed": 0, "errors": 0}
    due = _due(
        Payment.objects.filter(
            status=Payment.Status.CREATED, created_at__lte=now - FIRST_QUERY_AFTER, order__reserved_until__gt=now
        ),
        now,
    ).order_by("next_query_at", "pk")[:limit]
    for payment in due:
        provider = _provider(payment.provider)
        if provider is None or not _supports(provider, "query"):
            _postpone(payment, now)
            continue
        counts["queried"] += 1
        try:
            result = provider.query(payment=payment)
        except providers.ProviderError as exc:
            logger.warning("query of %s failed: %s", payment.out_trade_no, exc)
            counts["errors"] += 1
            _postpone(payment, now)
            continue
        if result.state == TradeState.PAID:
            outcome = _confirm_from_query(payment, result)
            logger.warning("payment %s found paid by query (lost notification): %s", payment.out_trade_no, outcome)
            if outcome in CONFIRMED:
                counts["confirmed"] += 1
            else:
                _postpone(payment, now)
        elif result.state == TradeState.CLOSED:
            counts["closed"] += _close_locally(payment)
        else:
            _postpone(payment, now)
    return counts


# -- close on expiry -------------------------------------------------------------------------------------


def close_expired_attempts(*, now=None, limit: int = 200) -> dict[str, int]:
    """Close open attempts whose order is past its deadline or no longer waiting for a payment."""
    now = now or timezone.now()
    counts = {"closed": 0, "confirmed": 0, "errors": 0}
    due = _due(
        Payment.objects.filter(status=Payment.Status.CREATED).filter(
            Q(order__reserved_until__lte=now) | ~Q(order__status=Order.Status.PENDING_PAYMENT)
        ),
        now,
    ).order_by("pk")[:limit]
    for payment in due:
        provider = _provider(payment.provider)
        if provider is None:
            _postpone(payment, now)
            continue
        try:
            if _supports(provider, "query"):
                result = provider.query(payment=payment)
                if result.state == TradeState.PAID:
                    outcome = _confirm_from_query(payment, result)
                    logger.warning("expired attempt %s was paid: %s", payment.out_trade_no, outcome)
                    if outcome in CONFIRMED:
                        counts["confirmed"] += 1
                    else:
                        _postpone(payment, now)
                    continue
                if result.state != TradeState.CLOSED and _supports(provider, "close"):
                    provider.close(payment=payment)
        except providers.ProviderError as exc:
            # e.g. paid between the query and the close: the next run queries again.
            logger.warning("closing %s failed: %s", payment.out_trade_no, exc)
            counts["errors"] += 1
            _postpone(payment, now)
            continue
        counts["closed"] += _close_locally(payment)
    return counts


# -- duplicate payments ----------------------------------------------------------------------------------


def scan_duplicate_payments(*, now=None) -> int:
    """Refund the extra payments of orders paid more than once (recent ones); returns refunds created."""
    now = now or timezone.now()
    recent = Payment.objects.filter(status=Payment.Status.PAID, paid_at__gte=now - DUPLICATE_LOOKBACK).values(
        "order_id"
    )
    rows = (
        Payment.objects.filter(status=Payment.Status.PAID, order_id__in=recent)
        .values("order_id")
        .annotate(paid=Count("id"))
        .filter(paid__gt=1)
    )
    created = 0
    for row in rows:
        refunded = (
            Refund.objects.filter(order_id=row["order_id"], reason=Refund.Reason.DUPLICATE_PAYMENT)
            .exclude(status=Refund.Status.FAILED)
            .values("payment_id")
            .distinct()
            .count()
        )
        if refunded >= row["paid"] - 1:
            continue
        made = services.refund_duplicate_payments(order_id=row["order_id"])
        if made:
            logger.warning("duplicate payment scan: %d refund(s) for order %s", len(made), row["order_id"])
        created += len(made)
    return created


# -- refunds ---------------------------------------------------------------------------------------------


def reconcile_refunds(*, now=None, limit: int = 200) -> dict[str, int]:
    """Drive refunds that are not final to a final state."""
    now = now or timezone.now()
    counts = {"requeued": 0, "queried": 0, "finished": 0, "errors": 0}
    from payments.tasks import execute_refund

    stale = Refund.objects.filter(status=Refund.Status.REQUESTED, created_at__lte=now - STALE_REQUESTED_REFUND)
    for refund_id in stale.values_list("pk", flat=True)[:limit]:
        execute_refund.delay(refund_id=refund_id)  # the task claims it: a spurious re-queue is harmless
        counts["requeued"] += 1

    due = _due(
        Refund.objects.select_related("payment").filter(
            status=Refund.Status.PROCESSING, created_at__lte=now - timedelta(minutes=1)
        ),
        now,
    ).order_by("next_query_at", "pk")[:limit]
    for refund in due:
        provider = _provider(services.refund_provider_name(refund))
        if provider is None:
            _postpone_refund(refund, now)
            continue
        counts["queried"] += 1
        try:
            result = provider.query_refund(refund=refund) if _supports(provider, "query_refund") else None
            if result is None:
                # The gateway does not know it (the worker died before sending it): send it again,
                # idempotent at the gateway by out_refund_no.
                result = provider.refund(refund=refund, returns=services.refund_returns(refund))
        except providers.ProviderError as exc:
            logger.warning("reconciling refund %s failed: %s", refund.out_refund_no, exc)
            counts["errors"] += 1
            _postpone_refund(refund, now)
            continue
        if result.pending:
            _postpone_refund(refund, now, gateway_refund_no=result.gateway_refund_no)
            continue
        services.record_refund_result(
            refund_id=refund.pk, succeeded=result.succeeded,
            gateway_refund_no=result.gateway_refund_no or refund.gateway_refund_no, failure=result.failure,
        )  # fmt: skip
        counts["finished"] += 1
    return counts


def _postpone_refund(refund: Refund, now, *, gateway_refund_no: str = "") -> None:
    if refund.query_attempts and refund.query_attempts % 24 == 0:
        logger.error("refund %s is still not final after %d queries", refund.out_refund_no, refund.query_attempts)
    Refund.objects.filter(pk=refund.pk, status=Refund.Status.PROCESSING).update(
        query_attempts=refund.query_attempts + 1,
        next_query_at=now + _backoff(refund.query_attempts, REFUND_BACKOFF),
        gateway_refund_no=gateway_refund_no or refund.gateway_refund_no,
    )
