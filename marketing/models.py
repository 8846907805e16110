"""Promotions: coupons, first-order and time-limited specials, level prices, referrals (marketing issue)."""
