"""Celery tasks of payments: thin wrappers around payments/services.py and payments/reconcile.py."""

from celery import shared_task

from kameng.tasks import exclusive
from payments import reconcile, services, settlement


@shared_task
def execute_refund(*, refund_id: int) -> str:
    return services.execute_refund(refund_id=refund_id)


@shared_task
def refund_order_in_full(*, order_id: int, reason: str) -> int | None:
    refund = services.refund_order_in_full(order_id=order_id, reason=reason)
    return refund.pk if refund else None


@shared_task
@exclusive(timeout=600)
def refund_stranded_orders() -> int:
    return services.refund_stranded_orders()


@shared_task
def send_duplicate_payment_email(*, refund_id: int) -> bool:
    return services.send_duplicate_payment_email(refund_id=refund_id)


@shared_task
@exclusive(timeout=300)
def query_open_payments() -> dict:
    return reconcile.query_open_payments()


@shared_task
@exclusive(timeout=300)
def close_expired_attempts() -> dict:
    return reconcile.close_expired_attempts()


@shared_task
@exclusive(timeout=600)
def scan_duplicate_payments() -> int:
    return reconcile.scan_duplicate_payments()


@shared_task
@exclusive(timeout=600)
def reconcile_refunds() -> dict:
    return reconcile.reconcile_refunds()


@shared_task
@exclusive(timeout=600)
def create_due_settlements() -> int:
    return settlement.create_due_settlements()


@shared_task
@exclusive(timeout=900)
def execute_due_settlements() -> dict:
    return settlement.execute_due_settlements()


@shared_task
@exclusive(timeout=600)
def reconcile_splits() -> dict:
    return settlement.reconcile_splits()
