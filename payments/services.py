"""Confirming payments, refunds and settlement (the payments issue builds them)."""
