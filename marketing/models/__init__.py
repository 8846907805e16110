"""Promotions' models, one module per kind of promotion (coupons, specials, referrals, campaigns…),
imported here so Django finds them; each module's docstring says what it owns."""

from marketing.models.coupons import Coupon, CouponRedemption
from marketing.models.offers import FirstOrderOffer, FirstOrderRedemption, QuantityTier, SpendTier, SpendTierPromotion
from marketing.models.referrals import Commission, InviteCode, Referral, ReferralProgram
from marketing.models.specials import FlashSpecial, SpecialRedemption
from marketing.models.wallet import CouponGrant, WinBackProgramme

__all__ = [
    "Commission", "Coupon", "CouponGrant", "CouponRedemption", "FirstOrderOffer", "FirstOrderRedemption",
    "FlashSpecial", "InviteCode", "QuantityTier", "Referral", "ReferralProgram", "SpecialRedemption", "SpendTier",
    "SpendTierPromotion", "WinBackProgramme",
]  # fmt: skip
