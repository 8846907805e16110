"""Promotions' models, one module per kind of promotion (coupons, specials, referrals, campaigns…),
imported here so Django finds them; each module's docstring says what it owns."""

from marketing.models.campaigns import Campaign, CampaignItem
from marketing.models.coupons import Coupon, CouponRedemption
from marketing.models.offers import FirstOrderOffer, FirstOrderRedemption, QuantityTier, SpendTier, SpendTierPromotion
from marketing.models.referrals import Commission, InviteCode, Referral, ReferralProgram
from marketing.models.specials import FlashSpecial, SpecialRedemption
from marketing.models.wallet import CouponGrant, WinBackProgramme
from marketing.models.withdrawals import LevelCommissionRate, Withdrawal

__all__ = [
    "Campaign", "CampaignItem", "Commission", "Coupon", "CouponGrant", "CouponRedemption", "FirstOrderOffer",
    "FirstOrderRedemption", "FlashSpecial", "InviteCode", "LevelCommissionRate", "QuantityTier", "Referral",
    "ReferralProgram", "SpecialRedemption", "SpendTier", "SpendTierPromotion", "WinBackProgramme", "Withdrawal",
]  # fmt: skip
