"""Payment providers. Each is a :class:`~payments.providers.base.Provider`; :func:`available`
lists those configured on this deployment (a provider whose settings are absent is not offered).

Today: ``sandbox`` (a local gateway page, DEBUG only). The payments issue adds ``alipay``,
``wechat`` and ``balance`` behind the same interface.
"""

from __future__ import annotations

from payments.providers.base import Provider, ProviderError, RefundResult, StartResult
from payments.providers.sandbox import SandboxProvider

__all__ = ["Provider", "ProviderError", "RefundResult", "StartResult", "available", "get"]

_ALL: dict[str, type[Provider]] = {"sandbox": SandboxProvider}


def available() -> list[Provider]:
    return [cls() for cls in _ALL.values() if cls.is_configured()]


def get(name: str) -> Provider:
    cls = _ALL.get(name)
    if cls is None or not cls.is_configured():
        raise ProviderError(f"payment provider {name!r} is not available here")
    return cls()
