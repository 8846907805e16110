"""Promotions' admin, one module per kind of promotion, imported here so Django's autodiscovery
finds them."""

from . import offers  # noqa: F401
