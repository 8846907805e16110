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
