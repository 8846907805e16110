"""Celery tasks of marketing: thin wrappers around its services (see kameng/tasks.py)."""

from celery import shared_task

from kameng.tasks import exclusive
from marketing import referrals


@shared_task
@exclusive(timeout=300)
def mature_commissions() -> int:
    """Book commissions of orders split meanwhile, and make those past their hold available."""
    return referrals.mature_due()


@shared_task
@exclusive(timeout=1800)
def win_back() -> int:
    """Grant win-back coupons to users idle for their programme's days, at most once per period."""
    from marketing import wallet

    return wallet.win_back()
