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


NOTIFICATION_FIELDS = (
    "notify_delivery_email",
    "notify_delivery_sms",
    "notify_promotions_email",
    "notify_promotions_sms",
    "notify_price_drops",
    "show_on_leaderboard",  # not a notification, but a choice of the same page: who sees my spending
)


def update_notification_settings(*, user: User, **choices: bool) -> None:
    """Save the notification choices of /me/settings/ (only those fields, one UPDATE)."""
    unknown = set(choices) - set(NOTIFICATION_FIELDS)
    if unknown:
        raise ValueError(f"not notification settings: {', '.join(sorted(unknown))}")
    visibility_changed = "show_on_leaderboard" in choices and bool(choices["show_on_leaderboard"]) != (
        User.objects.filter(pk=user.pk).values_list("show_on_leaderboard", flat=True).first()
    )
    User.objects.filter(pk=user.pk).update(**{name: bool(value) for name, value in choices.items()})
    for name, value in choices.items():
        setattr(user, name, bool(value))
    if visibility_changed:
        _visibility_changed(user)


def set_leaderboard_visibility(*, user: User, shown: bool) -> None:
    """Show or hide ``user`` on the spending leaderboard (orders/leaderboard.py)."""
    User.objects.filter(pk=user.pk).update(show_on_leaderboard=shown)
    user.show_on_leaderboard = shown
    _visibility_changed(user)


def _visibility_changed(user: User) -> None:
    from accounts.signals import leaderboard_visibility_changed  # signals imports this module

    leaderboard_visibility_changed.send(sender=User, user=user)
