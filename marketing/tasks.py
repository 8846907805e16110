"""Celery tasks of marketing: thin wrappers around its services (see kameng/tasks.py)."""

from celery import shared_task
from django.utils import timezone

from kameng.tasks import exclusive
from marketing import referrals


@shared_task
@exclusive(timeout=300)
def mature_commissions() -> int:
    """Book commissions of orders split meanwhile, and make those past their hold available."""
    return referrals.mature_due()


@shared_task
def render_campaign_share(campaign_id: int) -> bool:
    """Redraw a campaign's share image when what it shows changed (after every save)."""
    from marketing import campaigns

    return campaigns.refresh_share(campaign_id)


PAYOUT_TRIES = 6


@shared_task
def pay_withdrawal(withdrawal_id: int, attempt: int = 0) -> str:
    """Send an approved withdrawal's Alipay transfer. An unknown outcome (no answer, busy) is tried
    again with backoff (2, 4, 8… minutes), the same out_biz_no every time, so Alipay pays it at most
    once; a refusal stays ``failed`` for operators to retry, reject or pay offline."""
    from marketing import withdrawals
    from marketing.models import Withdrawal

    status = withdrawals.pay(withdrawal_id=withdrawal_id)
    if status == Withdrawal.Status.FAILED and attempt + 1 < PAYOUT_TRIES:
        again = Withdrawal.objects.filter(
            pk=withdrawal_id, status=Withdrawal.Status.FAILED, outcome_unknown=True
        ).update(status=Withdrawal.Status.APPROVED, queued_at=timezone.now())
        if again:
            pay_withdrawal.apply_async((withdrawal_id, attempt + 1), countdown=120 * 2**attempt)
    return status


@shared_task
@exclusive(timeout=300)
def requeue_stuck_withdrawals() -> int:
    """Approved withdrawals whose payout task was lost are queued again (marketing/withdrawals.py)."""
    from marketing import withdrawals

    return withdrawals.requeue_stuck()


@shared_task
@exclusive(timeout=1800)
def win_back() -> int:
    """Grant win-back coupons to users idle for their programme's days, at most once per period."""
    from marketing import wallet

    return wallet.win_back()
