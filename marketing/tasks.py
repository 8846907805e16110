"""Celery tasks of marketing: thin wrappers around its services (see kameng/tasks.py)."""

from celery import shared_task

from kameng.tasks import exclusive
from marketing import referrals


@shared_task
@exclusive(timeout=300)
def mature_commissions() -> int:
    """Book commissions of orders split meanwhile, and make those past their hold available."""
    return referrals.mature_due()
