"""marketing's receivers: the order lifecycle (orders/signals.py) and allauth's sign-up, connected
from MarketingConfig.ready()."""

from __future__ import annotations

from django.core import signing

from marketing import referrals
from marketing.models import ReferralProgram


def on_order_paid(sender, order, late=False, **kwargs) -> None:
    referrals.earn(order)


def on_order_refunded(sender, order, before_fen, after_fen, **kwargs) -> None:
    referrals.claw_back(order, after_fen=after_fen)


def on_signed_up(sender, request, user, **kwargs) -> None:
    """A sign-up that came through an invite link (the signed first-touch cookie, still in its window)."""
    if request is None:
        return
    window = ReferralProgram.load().cookie_days * 86400
    try:
        code = request.get_signed_cookie(referrals.COOKIE, salt=referrals.COOKIE_SALT, max_age=window)
    except (KeyError, signing.BadSignature):
        return
    referrals.attribute(invitee=user, code=code)


def on_signed_up_trial(sender, request, user, **kwargs) -> None:
    """Trial coupons (体验券): every running coupon marked for new sign-ups into the new wallet."""
    from marketing import wallet

    wallet.grant_trials(user)


def connect() -> None:
    from allauth.account.signals import user_signed_up

    from orders import signals

    signals.order_paid.connect(on_order_paid, dispatch_uid="marketing.referrals.paid")
    signals.order_refunded.connect(on_order_refunded, dispatch_uid="marketing.referrals.refunded")
    user_signed_up.connect(on_signed_up, dispatch_uid="marketing.referrals.signed_up")
    user_signed_up.connect(on_signed_up_trial, dispatch_uid="marketing.wallet.trial_coupons")

    from django.db.models.signals import post_delete, post_save

    from marketing import wallet
    from marketing.models import Coupon

    # The product pages' claimable coupons come from a cached snapshot (marketing/wallet.py).
    post_save.connect(wallet.forget_claimable, sender=Coupon, dispatch_uid="marketing.wallet.claimable.saved")
    post_delete.connect(wallet.forget_claimable, sender=Coupon, dispatch_uid="marketing.wallet.claimable.deleted")
