from allauth.account.signals import user_signed_up
from django.dispatch import receiver

from accounts import services


@receiver(user_signed_up, dispatch_uid="accounts.welcome_on_signup")
def _welcome_on_signup(sender, request, user, **kwargs):
    services.welcome_new_user(user=user)
