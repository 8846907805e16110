"""Payments' side of orders' payment port (orders/payment_port.py): what orders asks of payments,
answered by payments' services, selectors, tasks, providers and views. Registered when Django
starts (payments/apps.py), so orders never imports payments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse

from kameng.tasks import enqueue_on_commit
from orders import payment_port
from orders.models import Order
from orders.payment_port import PayChoice, RefundRoute
from payments import providers, services
from payments.models import Refund
from payments.selectors import paying_payment


class Payments:
    def refundable_fen(self, order: Order) -> int | None:
        payment = paying_payment(order)
        return None if payment is None else services.refundable_fen(payment)

    def request_refund(
        self, *, order: Order, amount_fen: int, reason: str, note: str, actor: Any, route: str = RefundRoute.ORIGINAL
    ) -> Refund:
        payment = paying_payment(order)
        if payment is None:
            raise services.PaymentError("only a completed payment can be refunded")
        return services.request_refund(
            payment=payment, amount_fen=amount_fen, reason=reason, note=note, actor=actor, route=route
        )

    def refund_in_full_on_commit(self, *, order_id: int, reason: str) -> None:
        from payments.tasks import refund_order_in_full

        # A task, not an inline call: if it fails, Celery retries it, and payments' stranded-refund
        # sweep finds any order left in `refunding` without a refund under way.
        enqueue_on_commit(refund_order_in_full, order_id=order_id, reason=str(reason))  # plain text for the broker

    def refund_in_full_by_operator(self, *, order_id: int, note: str, actor: Any, route: str) -> bool:
        return services.refund_in_full_by_operator(order_id=order_id, note=note, actor=actor, route=route)

    def refund_amount_by_operator(self, *, order: Order, amount_fen: int, note: str, actor: Any, route: str) -> Refund:
        return services.refund_amount_by_operator(
            order=order, amount_fen=amount_fen, note=note, actor=actor, route=route
        )

    def choices_for_checkout(self, *, user: Any, total_fen: int, balance_fen: int | None) -> Sequence[PayChoice]:
        return providers.for_checkout(user=user, total_fen=total_fen, balance_fen=balance_fen)

    def choices_for_order(self, *, order: Order, user: Any, balance_fen: int | None) -> Sequence[PayChoice]:
        return providers.available_for(order=order, user=user, balance_fen=balance_fen)

    def start(self, request: HttpRequest, *, order: Order, provider_name: str) -> HttpResponse:
        from payments import views

        return views.begin(request, order=order, provider_name=provider_name)


def register() -> None:
    """Hand orders this implementation (PaymentsConfig.ready); mypy checks it fits the port."""
    payment_port.register(Payments())
