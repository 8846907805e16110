"""What orders needs from payments, and nothing more: the port that keeps the dependency one way.

Payments depends on orders (it pays, confirms and refunds orders, and locks them); orders must not
import payments back, or the two apps become one tangle (kameng/tests/test_structure.py asserts the
app import graph is acyclic and goes down the layering in docs/ARCHITECTURE.md). So orders states
here what it asks of payments — the refundable amount of an order, a refund of an amount, a full
refund of an order it could not deliver, the operators' refunds, the ways to pay shown on the
checkout and the order page, and the response that starts paying — and payments implements it
(payments/port.py) and registers the implementation when Django starts (payments/apps.py).

The refund reasons and routes are defined here because orders chooses them; payments' ``Refund``
model uses these very choices, so the stored values are the same strings as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from django.db import models
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

    from orders.models import Order


class RefundReason(models.TextChoices):
    """Why money goes back (stored on payments' Refund rows)."""

    OUT_OF_STOCK = "out_of_stock", _("could not deliver: out of stock")
    DUPLICATE_PAYMENT = "duplicate_payment", _("paid twice")
    AFTER_SALES = "after_sales", _("after-sales")
    OPERATOR = "operator", _("operator decision")


class RefundRoute(models.TextChoices):
    """Where the money goes: back the way it came (the gateway), or to the buyer's wallet."""

    ORIGINAL = "original", _("original payment route")
    WALLET = "wallet", _("buyer's wallet")


class PaymentRefused(Exception):
    """Payments cannot do what orders asked; ``str()`` is worded for the operator or the shopper.

    payments' own ``PaymentError`` is a subclass, so every refusal reaches orders as this."""


class RequestedRefund(Protocol):
    """What orders reads of a refund it requested (payments' ``Refund`` row)."""

    @property
    def amount_fen(self) -> int: ...


class PayChoice(Protocol):
    """One way to pay, as the checkout and the order page show it (a payments provider)."""

    @property
    def name(self) -> str: ...

    @property
    def label(self) -> Any: ...  # a lazily translated string

    @property
    def methods(self) -> Sequence[tuple[str, Any]]: ...  # other ways of the same provider (e.g. QR)


class PaymentPort(Protocol):
    def refundable_fen(self, order: Order) -> int | None:
        """What is left to refund of the payment that paid ``order``; None when none did."""

    def request_refund(
        self, *, order: Order, amount_fen: int, reason: str, note: str, actor: Any, route: str = RefundRoute.ORIGINAL
    ) -> RequestedRefund:
        """Refund ``amount_fen`` of the payment that paid ``order`` (raises PaymentRefused)."""

    def refund_in_full_on_commit(self, *, order_id: int, reason: str) -> None:
        """Once the current transaction commits, refund everything paid for ``order_id``, retried
        until it is under way (an order that could not be delivered)."""

    def refund_in_full_by_operator(self, *, order_id: int, note: str, actor: Any, route: str) -> bool:
        """An operator gives back everything left: False when there is nothing to refund."""

    def refund_amount_by_operator(
        self, *, order: Order, amount_fen: int, note: str, actor: Any, route: str
    ) -> RequestedRefund:
        """An operator gives back part of the order's payment; the order stays as it is."""

    def choices_for_checkout(self, *, user: Any, total_fen: int, balance_fen: int | None) -> Sequence[PayChoice]:
        """What a buyer about to place a goods order of ``total_fen`` may pay with."""

    def choices_for_order(self, *, order: Order, user: Any, balance_fen: int | None) -> Sequence[PayChoice]:
        """What ``order`` may be paid with by ``user`` on its page."""

    def start(self, request: HttpRequest, *, order: Order, provider_name: str) -> HttpResponse:
        """Open a payment attempt and answer with the way to pay it (the gateway, a QR code, or the
        order page with a message when it cannot be paid this way)."""


_registered: PaymentPort | None = None


def register(port: PaymentPort) -> None:
    """Called by payments when Django starts (PaymentsConfig.ready)."""
    global _registered
    _registered = port


def get() -> PaymentPort:
    if _registered is None:
        raise RuntimeError("no payment port registered: is the payments app installed?")
    return _registered
