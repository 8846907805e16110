"""Pricing rules and campaigns (the marketing issue builds them)."""
