from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders")

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from orders import (  # noqa: F401  (loyalty and membership register their pricing rules)
            leaderboard,
            loyalty,
            membership,
            receivers,
            usercenter,
        )
        from orders.models import OrderEvent

        usercenter.register()  # the orders and membership cards of the user-center home (accounts/usercenter.py)
        receivers.connect()  # guest orders are claimed by a verified e-mail (allauth's signals)
        # Payments and refunds ask for the spending leaderboard to be recomputed soon (coalesced).
        post_save.connect(leaderboard.on_order_event, sender=OrderEvent, dispatch_uid="orders.leaderboard")
        # A user shown or hidden (the leaderboard's switch or /me/settings/): the boards again, on commit.
        from accounts.signals import leaderboard_visibility_changed

        leaderboard_visibility_changed.connect(
            leaderboard.on_visibility_changed, dispatch_uid="orders.leaderboard_visibility"
        )
