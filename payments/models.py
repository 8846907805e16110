"""Payments: Payment, Notification, Refund, Settlement (the payments issue builds them)."""
