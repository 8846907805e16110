"""Payment providers. Each is a :class:`~payments.providers.base.Provider`; :func:`available`
lists those configured on this deployment (a provider whose settings are absent is not offered).

* ``alipay`` — alipay-sdk-python: page pay on a desktop, WAP pay on a phone, QR as an option.
* ``wechat`` — wechatpayv3, API v3 Native QR, public-key mode (certificate mode supported).
* ``sandbox`` — a local gateway page with Pay / Fail buttons, only with DEBUG on.

The wallet (``balance``) provider arrives with the money ledger of the settlement issue.
"""

from __future__ import annotations

from payments.providers.alipay import AlipayProvider
from payments.providers.base import (
    GatewayUnavailable,
    KeyFormatError,
    NotificationRefused,
    Provider,
    ProviderError,
    RefundResult,
    StartResult,
    TradeQuery,
    TradeState,
    VerifiedNotification,
)
from payments.providers.sandbox import SandboxProvider
from payments.providers.wechat import WeChatPayProvider

__all__ = [
    "GatewayUnavailable", "KeyFormatError", "NotificationRefused", "Provider", "ProviderError", "RefundResult",
    "StartResult", "TradeQuery", "TradeState", "VerifiedNotification", "available", "get", "provider_class",
]  # fmt: skip

_ALL: dict[str, type[Provider]] = {
    "alipay": AlipayProvider,
    "wechat": WeChatPayProvider,
    "sandbox": SandboxProvider,
}


def available() -> list[Provider]:
    return [cls() for cls in _ALL.values() if cls.is_configured()]


def provider_class(name: str) -> type[Provider] | None:
    """The class of a known provider, configured or not (to answer a gateway in its own format)."""
    return _ALL.get(name)


def get(name: str) -> Provider:
    cls = _ALL.get(name)
    if cls is None or not cls.is_configured():
        raise ProviderError(f"payment provider {name!r} is not available here")
    return cls()
