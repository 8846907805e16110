"""Payment providers. Each is a :class:`~payments.providers.base.Provider`; :func:`available`
lists those configured on this deployment (a provider whose settings are absent is not offered).

* ``alipay`` — alipay-sdk-python: page pay on a desktop, WAP pay on a phone, QR as an option.
* ``wechat`` — wechatpayv3, API v3 Native QR, public-key mode (certificate mode supported).
* ``sandbox`` — a local gateway page with Pay / Fail buttons, only with DEBUG on.
* ``balance`` — the buyer's wallet; offered per order (:func:`available_for`), not in :func:`available`.
"""

from __future__ import annotations

from payments.providers.alipay import AlipayProvider
from payments.providers.balance import BalanceProvider
from payments.providers.base import (
    GatewayUnavailable,
    KeyFormatError,
    NotificationRefused,
    Provider,
    ProviderError,
    RefundResult,
    SplitState,
    StartResult,
    TradeQuery,
    TradeState,
    VerifiedNotification,
)
from payments.providers.sandbox import SandboxProvider
from payments.providers.wechat import WeChatPayProvider

__all__ = [
    "GatewayUnavailable", "KeyFormatError", "NotificationRefused", "Provider", "ProviderError", "RefundResult",
    "SplitState", "StartResult", "TradeQuery", "TradeState", "VerifiedNotification", "available", "available_for",
    "for_checkout", "get", "provider_class",
]  # fmt: skip

_ALL: dict[str, type[Provider]] = {
    "alipay": AlipayProvider,
    "wechat": WeChatPayProvider,
    "sandbox": SandboxProvider,
    "balance": BalanceProvider,
}


def available() -> list[Provider]:
    """The gateways configured here (the wallet is offered per order: :func:`available_for`)."""
    return [cls() for name, cls in _ALL.items() if name != "balance" and cls.is_configured()]


def available_for(*, order, user, balance_fen: int | None = None) -> list[Provider]:
    """What the buyer of ``order`` may pay it with: the wallet first when ``user`` is its signed-in
    buyer and the balance covers the total, then the configured gateways (a top-up is never paid
    from the wallet it fills; goods and memberships may be)."""
    if order.kind != order.Kind.TOP_UP and user is not None and user.is_authenticated and order.buyer_id == user.pk:
        return for_checkout(user=user, total_fen=order.total_fen, balance_fen=balance_fen)
    return available()


def for_checkout(*, user, total_fen: int, balance_fen: int | None = None) -> list[Provider]:
    """What a buyer about to place a goods order of ``total_fen`` may pay with (the checkout form's
    choice): the wallet first when ``user`` is signed in and the balance covers it, then the gateways."""
    offered = available()
    if user is not None and user.is_authenticated:
        if balance_fen is None:
            from accounts.wallet import balance_fen as wallet_balance

            balance_fen = wallet_balance(user)
        if balance_fen >= total_fen:
            offered.insert(0, BalanceProvider())
    return offered


def provider_class(name: str) -> type[Provider] | None:
    """The class of a known provider, configured or not (to answer a gateway in its own format)."""
    return _ALL.get(name)


def get(name: str) -> Provider:
    cls = _ALL.get(name)
    if cls is None or not cls.is_configured():
        raise ProviderError(f"payment provider {name!r} is not available here")
    return cls()
