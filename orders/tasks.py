"""Celery tasks of orders: thin wrappers around orders/services.py (see kameng/tasks.py)."""

from celery import shared_task

from kameng.tasks import exclusive
from orders import aftersales, emails, leaderboard, membership, services, sms


# Nobody waits for a delivery's result: not storing it spares the worker a Redis write and the
# web process that queues it (on payment) a subscription to its result channel.
@shared_task(ignore_result=True)
def deliver_order(*, order_id: int) -> str:
    return services.deliver_order(order_id=order_id)


@shared_task
def send_delivery_email(*, order_id: int, again: bool = False) -> bool:
    return emails.send_delivery_email(order_id=order_id, again=again)


@shared_task
def send_delivery_sms(*, order_id: int) -> bool:
    return sms.send_delivery_sms(order_id=order_id)


@shared_task
def send_after_sales_email(*, request_id: int, kind: str) -> bool:
    return aftersales.send_email(request_id=request_id, kind=kind)


@shared_task
@exclusive(timeout=300)
def expire_overdue_orders() -> int:
    return services.expire_overdue_orders()


@shared_task
@exclusive(timeout=300)
def redeliver_stuck_orders() -> int:
    return services.redeliver_stuck_orders()


@shared_task
def send_membership_reminder(*, membership_id: int) -> bool:
    return membership.send_renewal_reminder(membership_id=membership_id)


@shared_task
@exclusive(timeout=600)
def send_membership_reminders() -> int:
    return membership.send_renewal_reminders()


@shared_task(ignore_result=True)
def refresh_leaderboard() -> int:
    """Periodic, and after a user hides or shows themselves: recompute the spending boards. Two
    runs at once only cost time (each writes a complete board), so no lock."""
    return leaderboard.refresh_all()


@shared_task
@exclusive(timeout=3600)
def compute_related_products() -> int:
    """Nightly: "bought together" from the paid orders of the last 90 days (orders/related.py)."""
    from orders import related

    return related.compute()
