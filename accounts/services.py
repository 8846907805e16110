"""Use cases of the accounts app. Plain functions, keyword-only arguments, one transaction each."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts.models import User
from kameng.tasks import enqueue_on_commit


def welcome_new_user(*, user: User) -> None:
    """Queue the welcome e-mail for a user who just signed up."""
    from accounts.tasks import send_welcome_email

    enqueue_on_commit(send_welcome_email, user_id=user.pk, language=translation.get_language())


def send_welcome_email(*, user_id: int, language: str | None = None) -> bool:
    """Send the welcome e-mail at most once per user. Returns whether this call sent it.

    The conditional update claims the e-mail before sending, so a repeated or concurrent task
    sends nothing; a crash between claim and send loses one welcome e-mail, never duplicates it.
    """
    claimed = User.objects.filter(pk=user_id, is_active=True, welcome_sent_at__isnull=True).update(
        welcome_sent_at=timezone.now()
    )
    if not claimed:
        return False
    user = User.objects.get(pk=user_id)
    with translation.override(language or settings.LANGUAGE_CODE):
        context = {"user": user, "site_url": settings.SITE_URL, "shop_name": settings.SHOP_NAME}
        subject = render_to_string("accounts/email/welcome_subject.txt", context).strip()
        body = render_to_string("accounts/email/welcome.txt", context)
        html = render_to_string("accounts/email/welcome.html", context)
    send_mail(subject, body, None, [user.email], html_message=html)
    return True


def set_leaderboard_visibility(*, user: User, shown: bool) -> None:
    """Show or hide ``user`` on the spending leaderboard (orders/leaderboard.py)."""
    User.objects.filter(pk=user.pk).update(show_on_leaderboard=shown)
    user.show_on_leaderboard = shown
