from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = _("Marketing")

    def ready(self) -> None:
        from marketing import coupons, receivers, specials, usercenter

        # Receivers of order_placed run in this order: the coupon's row, then the specials' (lock order).
        coupons.connect()  # the "coupon" pricing rule registers on import
        specials.connect()  # the flash_special pricing rule registers on import; the lifecycle receivers
        receivers.connect()  # referral commission on paid/refunded orders, attribution at sign-up
        usercenter.register()  # the invite card of the user-center home (accounts/usercenter.py)
