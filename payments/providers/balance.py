"""The wallet (``balance``): pay an order from the buyer's wallet balance (accounts/wallet.py).

Offered to the signed-in buyer of an order when the balance covers it. Paying debits the wallet and
confirms the payment in one transaction (``payments.services.pay_from_wallet``), so the delivery
follows exactly as after a gateway's notification, and a second click finds the order paid. A
refund of a wallet payment — or any refund routed to the wallet — is a wallet credit, final at once.
Top-ups come in through Alipay / WeChat Pay (or the sandbox) as payments of a top-up order.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from payments.providers.base import Provider, RefundResult, StartResult, TradeQuery, TradeState


class BalanceProvider(Provider):
    name = "balance"
    label = _("wallet balance")

    @classmethod
    def is_configured(cls) -> bool:
        return True  # offered per order and buyer: see payments.providers.available_for

    def start(self, *, payment, request, method: str = "") -> StartResult:
        from payments import services

        services.pay_from_wallet(payment=payment, user=getattr(request, "user", None))
        return StartResult(redirect_url=reverse("orders:detail", kwargs={"number": payment.order.number}))

    def query(self, *, payment) -> TradeQuery:
        from accounts import wallet

        entry = wallet.find(kind=wallet.Kind.PAYMENT, reference=payment.out_trade_no)
        if entry is None:
            return TradeQuery(state=TradeState.NOT_FOUND)
        return TradeQuery(state=TradeState.PAID, gateway_trade_no=f"W{entry.pk}", amount_fen=-entry.amount_fen)

    def close(self, *, payment) -> None:
        return None  # nothing is open anywhere else: an unpaid wallet attempt never debited anything

    def refund(self, *, refund, returns=()) -> RefundResult:
        from accounts import wallet

        order = refund.order
        if order.buyer_id is None:
            return RefundResult(succeeded=False, failure="a guest order has no wallet to refund to")
        entry = wallet.credit(
            user=order.buyer, amount_fen=refund.amount_fen, kind=wallet.Kind.REFUND, reference=refund.out_refund_no,
            order=order, note=f"{order.number}",
        )  # fmt: skip
        return RefundResult(succeeded=True, gateway_refund_no=f"W{entry.pk}")

    def query_refund(self, *, refund) -> RefundResult | None:
        from accounts import wallet

        entry = wallet.find(kind=wallet.Kind.REFUND, reference=refund.out_refund_no)
        return None if entry is None else RefundResult(succeeded=True, gateway_refund_no=f"W{entry.pk}")

    def split(self, *, payment, out_request_no: str, receivers: list[dict]) -> dict:
        """The platform already holds wallet money: the split lives in the ledger only (the merchant's
        share is paid out with the merchant's periodic withdrawal). Idempotent by ``out_request_no``."""
        return {"out_request_no": out_request_no, "settle_no": f"WS{out_request_no}", "state": "SUCCESS"}
