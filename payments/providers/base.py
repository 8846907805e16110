"""What every payment provider implements.

Calls that reach a gateway (``refund``, ``query``, ``close``…) are made outside any database
transaction that holds row locks; services arrange that.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise


class ProviderError(Exception):
    pass


@dataclass
class StartResult:
    """How the buyer pays: follow ``redirect_url``, or scan ``qr_content``."""

    redirect_url: str = ""
    qr_content: str = ""


@dataclass
class RefundResult:
    succeeded: bool
    gateway_refund_no: str = ""
    pending: bool = False  # the gateway accepted it; the final state comes later (reconcile)
    failure: str = ""


class Provider:
    name: str = ""
    label: str | Promise = ""

    @classmethod
    def is_configured(cls) -> bool:
        return False

    def start(self, *, payment, request) -> StartResult:
        raise NotImplementedError

    def refund(self, *, refund) -> RefundResult:
        raise NotImplementedError
