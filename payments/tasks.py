"""Celery tasks of payments: thin wrappers around payments/services.py."""

from celery import shared_task

from payments import services


@shared_task
def execute_refund(*, refund_id: int) -> str:
    return services.execute_refund(refund_id=refund_id)
