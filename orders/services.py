"""Checkout, the order lifecycle and delivery (the orders issue builds them)."""
