"""Promotions' admin, one module per kind of promotion, imported here so Django's autodiscovery
finds them."""

from . import offers  # noqa: E402, F401
