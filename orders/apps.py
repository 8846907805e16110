from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders")

    def ready(self) -> None:
        from orders import (
            membership,  # noqa: F401  (registers the annual-member pricing rule)
            receivers,
            usercenter,
        )

        usercenter.register()  # the orders and membership cards of the user-center home (accounts/usercenter.py)
        receivers.connect()  # guest orders are claimed by a verified e-mail (allauth's signals)
