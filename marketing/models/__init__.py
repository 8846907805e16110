"""Promotions' models, one module per kind of promotion (coupons, specials, referrals, campaigns…),
imported here so Django finds them; each module's docstring says what it owns."""

from marketing.models.specials import FlashSpecial, SpecialRedemption  # noqa: F401
