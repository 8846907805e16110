"""Promotions' admin, one module per kind of promotion, imported here so Django's autodiscovery
finds them."""

from marketing.admin import campaigns, coupons, offers, referrals, specials, wallet, withdrawals  # noqa: F401
