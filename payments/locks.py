"""Row locks on payments and settlements, in the lock order stated in ``orders/locks.py``:
Order → (AfterSalesRequest) → Payment → CardCode → OrderItemCode → Wallet → Settlement."""

from __future__ import annotations

from orders.locks import lock_order
from orders.models import Order
from payments.models import Payment, Refund, Settlement


def lock_order_and_payment(*, order_id: int, payment_id: int) -> tuple[Order, Payment]:
    """Steps 1 and 3: the order, then one of its payments; both returned fresh."""
    order = lock_order(order_id)
    return order, Payment.objects.select_for_update().get(pk=payment_id)


def lock_payment(payment_id: int) -> Payment:
    """Step 3 alone, for a caller that already holds the order lock."""
    return Payment.objects.select_for_update().get(pk=payment_id)


def lock_paid_payments(order: Order) -> list[Payment]:
    """Step 3 for every successful payment of a locked order, in ascending id."""
    return list(Payment.objects.select_for_update().filter(order=order, status=Payment.Status.PAID).order_by("pk"))


def lock_order_of_refund(refund_id: int) -> Order:
    """Step 1 for the order a refund belongs to: serialises the refunds of one order."""
    return lock_order(Refund.objects.values_list("order_id", flat=True).get(pk=refund_id))


def lock_settlements(order: Order) -> list[Settlement]:
    """Step 7 for every settlement of a locked order, by merchant id."""
    return list(Settlement.objects.select_for_update().filter(order=order).order_by("merchant_id"))


def lock_order_and_settlement(settlement_id: int) -> tuple[Order, Settlement]:
    """Steps 1 and 7: a settlement's order, then the settlement; both returned fresh."""
    order_id = Settlement.objects.values_list("order_id", flat=True).get(pk=settlement_id)
    order = lock_order(order_id)
    return order, Settlement.objects.select_for_update().get(pk=settlement_id)
