from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self):
        from payments import (
            checks,  # noqa: F401 - registers the providers' configuration checks
            port,
            usercenter,
        )

        usercenter.register()  # the wallet card of the user-center home (accounts/usercenter.py)
        port.register()  # what orders asks of payments (orders/payment_port.py), without importing it
