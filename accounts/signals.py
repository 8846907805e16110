from allauth.account.signals import user_signed_up
from django.dispatch import Signal, receiver

from accounts import services


@receiver(user_signed_up, dispatch_uid="accounts.welcome_on_signup")
def _welcome_on_signup(sender, request, user, **kwargs):
    services.welcome_new_user(user=user)


# Sent after the commit that marked ``phone`` (E.164) verified for ``user`` (accounts/adapter.py).
# orders/receivers.py claims guest orders placed with that number; accounts never imports orders.
phone_verified = Signal()

# Sent when a user shows or hides themselves on the spending leaderboard (/me/leaderboard/ or
# /me/settings/); orders recomputes the boards after the commit. accounts never imports orders.
leaderboard_visibility_changed = Signal()
