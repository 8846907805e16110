"""Celery tasks of marketing: thin wrappers around its services (see kameng/tasks.py)."""

from celery import shared_task

from kameng.tasks import exclusive
from marketing import referrals


@shared_task
@exclusive(timeout=300)
def mature_commissions() -> int:
    """Book commissions of orders split meanwhile, and make those past their hold available."""
    return referrals.mature_due()


@shared_task(bind=True, max_retries=6, default_retry_delay=60)
def pay_withdrawal(self, withdrawal_id: int) -> str:
    """Send an approved withdrawal's Alipay transfer. An unknown outcome is retried with backoff, the
    same out_biz_no every time (Alipay pays it at most once); a refusal stays failed for operators."""
    from marketing import withdrawals
    from marketing.models import Withdrawal

    status = withdrawals.pay(withdrawal_id=withdrawal_id)
    if status == Withdrawal.Status.FAILED:
        found = Withdrawal.objects.get(pk=withdrawal_id)
        if found.outcome_unknown and self.request.retries < self.max_retries:
            Withdrawal.objects.filter(pk=withdrawal_id, status=Withdrawal.Status.FAILED).update(
                status=Withdrawal.Status.APPROVED
            )
            raise self.retry(countdown=60 * 2**self.request.retries)
    return status
