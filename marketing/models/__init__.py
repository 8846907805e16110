"""Promotions' models, one module per kind of promotion (coupons, specials, referrals, campaigns…),
imported here so Django finds them; each module's docstring says what it owns."""

from .offers import (  # noqa: F401
    FirstOrderOffer,
    FirstOrderRedemption,
    QuantityTier,
    SpendTier,
    SpendTierPromotion,
)
