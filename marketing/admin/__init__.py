"""Promotions' admin, one module per kind of promotion, imported here so Django's autodiscovery
finds them."""

from marketing.admin import coupons, offers, referrals, specials, wallet  # noqa: F401
