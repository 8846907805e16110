from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = _("Marketing")

    def ready(self) -> None:
        from marketing import campaigns, coupons, receivers, specials, usercenter

        # Receivers of order_placed run in this order: the coupon's row, the specials', then the
        # first-order redemption (the lock order, docs/ARCHITECTURE.md).
        coupons.connect()  # the "coupon" pricing rule registers on import
        specials.connect()  # the flash_special pricing rule registers on import; the lifecycle receivers
        from marketing import offers  # noqa: F401  (quantity_tier, spend_tiers, first_order and their receivers)

        campaigns.connect()  # a campaign's items keep their flash specials, the cache and share image in step
        receivers.connect()  # referral commission on paid/refunded orders, attribution at sign-up
        from marketing import withdrawals
        from payments.selectors import register_check

        register_check("withdrawal_mismatch", withdrawals.violations)  # check_ledger covers withdrawals
        usercenter.register()  # the coupons and invite cards of the user-center home (accounts/usercenter.py)
