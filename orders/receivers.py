"""Guest orders follow a verified e-mail into the account (issue 13), hooked to allauth's signals
here so that accounts never imports orders (the app layering of docs/ARCHITECTURE.md).

Claimed when an address is confirmed, and at sign-up and every login for the addresses already
verified (a social or pre-verified sign-up, a password reset that verified it, guest orders placed
signed out after the account existed). An unverified address claims nothing: anyone can type any
e-mail at sign-up. Phone numbers the same way: when accounts marks a number verified (its
``phone_verified`` signal, sent after the commit: an SMS code came back) and at sign-up and every login
for the account's verified number; an unverified number claims nothing.

Also here: the demo shop's annual-membership plan, added when ``catalog.demo.seed_demo`` says it ran
(``catalog.signals.demo_seeded``)."""

from __future__ import annotations

from allauth.account.models import EmailAddress

from orders import services


def claim_on_confirmation(sender, request=None, email_address=None, **kwargs) -> None:
    if email_address is not None and email_address.verified:
        services.claim_guest_orders(user=email_address.user, email=email_address.email)


def claim_verified_addresses(sender, request=None, user=None, **kwargs) -> None:
    if user is None:
        return
    for email in EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True):
        services.claim_guest_orders(user=user, email=email)
    if user.phone and user.phone_verified:
        services.claim_guest_orders_by_phone(user=user, phone=str(user.phone))


def claim_on_phone_verified(sender, user=None, phone: str = "", **kwargs) -> None:
    if user is not None and phone:
        services.claim_guest_orders_by_phone(user=user, phone=phone)


def seed_demo_membership_plan(sender=None, **kwargs) -> None:
    """The demo shop sells an annual membership (found by name, so seeding twice keeps one)."""
    from orders.models import MembershipPlan

    MembershipPlan.objects.get_or_create(
        name="年度会员",
        defaults={"name_en": "Annual membership", "price_fen": 9_900, "duration_days": 365, "discount_percent": 5},
    )


def connect() -> None:
    from allauth.account.signals import email_confirmed, user_logged_in, user_signed_up

    from accounts.signals import phone_verified

    phone_verified.connect(claim_on_phone_verified, dispatch_uid="orders.claim_on_phone_verified")
    email_confirmed.connect(claim_on_confirmation, dispatch_uid="orders.claim_on_confirmation")
    user_signed_up.connect(claim_verified_addresses, dispatch_uid="orders.claim_on_sign_up")
    user_logged_in.connect(claim_verified_addresses, dispatch_uid="orders.claim_on_login")
    from catalog.signals import demo_seeded

    demo_seeded.connect(seed_demo_membership_plan, dispatch_uid="orders.seed_demo_membership_plan")
