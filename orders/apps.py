from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders")

    def ready(self) -> None:
        from orders import (  # noqa: F401  (loyalty and membership register their pricing rules)
            loyalty,
            membership,
            receivers,
            usercenter,
        )

        usercenter.register()  # the orders and membership cards of the user-center home (accounts/usercenter.py)
        receivers.connect()  # guest orders are claimed by a verified e-mail (allauth's signals)
