from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts import services
from kameng.tasks import exclusive


@shared_task
def send_welcome_email(*, user_id: int, language: str | None = None) -> bool:
    return services.send_welcome_email(user_id=user_id, language=language)


@shared_task
@exclusive(timeout=600)
def clear_expired_sessions() -> int:
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


@shared_task
@exclusive(timeout=1800)
def expire_points() -> int:
    """Points past their year expire (accounts/points.py); idempotent, so a daily run catches up."""
    from accounts import points

    return points.expire_due()
