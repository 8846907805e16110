"""The sandbox gateway: a local page with Pay / Fail buttons, for the embedded run and tests.

It exists only with DEBUG on (``PAYMENT_SANDBOX_ENABLED``). "Pay" confirms the payment through the
same service a verified Alipay/WeChat notification uses; refunds succeed at once.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from payments.providers.base import Provider, RefundResult, StartResult


class SandboxProvider(Provider):
    name = "sandbox"
    label = _("Sandbox (test payments)")

    @classmethod
    def is_configured(cls) -> bool:
        return bool(settings.PAYMENT_SANDBOX_ENABLED)

    def start(self, *, payment, request, method: str = "") -> StartResult:
        return StartResult(redirect_url=reverse("payments:sandbox", kwargs={"out_trade_no": payment.out_trade_no}))

    def refund(self, *, refund, returns=()) -> RefundResult:
        return RefundResult(succeeded=True, gateway_refund_no=f"SBR{refund.pk:012d}")

    def split(self, *, payment, out_request_no: str, receivers: list[dict]) -> dict:
        """Settles at once (the embedded run and tests); idempotent by ``out_request_no``."""
        return {"out_request_no": out_request_no, "settle_no": f"SBS{out_request_no}", "state": "SUCCESS"}
