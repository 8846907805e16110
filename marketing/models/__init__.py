"""Promotions' models, one module per kind of promotion (coupons, specials, referrals, campaigns…),
imported here so Django finds them; each module's docstring says what it owns."""

from marketing.models.referrals import Commission, InviteCode, Referral, ReferralProgram

__all__ = ["Commission", "InviteCode", "Referral", "ReferralProgram"]
