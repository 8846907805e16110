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
def render_campaign_share(campaign_id: int) -> bool:
    """Redraw a campaign's share image when what it shows changed (after every save)."""
    from marketing import campaigns

    return campaigns.refresh_share(campaign_id)
