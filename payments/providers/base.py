"""What every payment provider implements, and the values that cross the interface.

A provider talks to one gateway. It never touches the database: services decide what a gateway's
answer means for our payments, refunds and orders (payments/services.py, payments/reconcile.py,
payments/notifications.py). Calls that reach a gateway (``start``, ``query``, ``close``,
``refund``…) are made outside any database transaction that holds row locks; services arrange that.

Errors:

* :class:`ProviderError` — the gateway said no (a business refusal) or the provider cannot work
  (configuration, key files). Worded for operators; never contains key material.
* :class:`GatewayUnavailable` — the outcome is *unknown* (connection failure, timeout, an answer
  whose signature does not verify, a gateway "system busy"). A refund that ends like this is left
  ``processing`` and reconciled later with the same ``out_refund_no``; it is never marked failed.
* :class:`NotificationRefused` — an incoming notification is not accepted; ``reason`` is stored
  with the raw message for operators.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.http import HttpResponse
from django.utils.functional import Promise


class ProviderError(Exception):
    pass


class GatewayUnavailable(ProviderError):
    """The gateway could not be asked or its answer cannot be trusted: the outcome is unknown."""


class KeyFormatError(ProviderError):
    """A key file is missing, unreadable or not in a format the provider can use."""


class KeyFileUnreadable(KeyFormatError):
    """A configured key path cannot be read (missing file, permissions, a directory)."""


class NotificationRefused(Exception):
    def __init__(self, reason: str, *, parsed: dict | None = None, verified: bool = False, out_trade_no: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.parsed = parsed or {}
        self.verified = verified
        self.out_trade_no = out_trade_no


@dataclass
class StartResult:
    """How the buyer pays: follow ``redirect_url``, or scan ``qr_content`` (shown as a QR code)."""

    redirect_url: str = ""
    qr_content: str = ""


@dataclass
class RefundResult:
    succeeded: bool
    gateway_refund_no: str = ""
    pending: bool = False  # the gateway accepted it, or we cannot tell yet: reconcile decides later
    failure: str = ""


class TradeState(StrEnum):
    PAID = "paid"  # the buyer paid (Alipay TRADE_SUCCESS/TRADE_FINISHED, WeChat SUCCESS)
    OPEN = "open"  # created at the gateway, not paid yet
    CLOSED = "closed"  # closed or cancelled at the gateway: can no longer be paid
    NOT_FOUND = "not_found"  # the gateway does not know the trade (the buyer never opened it)


class SplitState(StrEnum):
    """What the gateway says of a split it accepted (``Settlement.gateway_state``)."""

    PROCESSING = "processing"  # accepted, not final (WeChat PROCESSING): asked again by reconcile_splits
    FINISHED = "finished"  # the merchant has the money
    CLOSED = "closed"  # the gateway gave up: the merchant was not paid


@dataclass
class TradeQuery:
    """The gateway's (signature-verified) answer about one trade."""

    state: str
    gateway_trade_no: str = ""
    amount_fen: int | None = None
    raw_state: str = ""


@dataclass
class VerifiedNotification:
    """A notification whose signature, sender and merchant identity were checked by the provider.

    ``kind`` is ``payment`` or ``refund``. For payments ``succeeded`` says whether the trade state
    is a success state and ``amount_fen`` is the trade's total. For refunds ``refund_final`` says
    whether the gateway reports a final result, ``succeeded`` which one; the amount is either this
    refund's (``refund_fen``, WeChat) or the trade's cumulative refunded total
    (``refunded_total_fen``, Alipay).
    """

    kind: str
    out_trade_no: str
    state: str
    succeeded: bool
    parsed: dict = field(default_factory=dict)
    amount_fen: int | None = None
    gateway_trade_no: str = ""
    notify_id: str = ""
    out_refund_no: str = ""
    gateway_refund_no: str = ""
    refund_final: bool = False
    refund_fen: int | None = None
    refunded_total_fen: int | None = None


class Provider:
    name: str = ""
    label: str | Promise = ""
    # Extra ways of paying this provider offers next to its default, as (method, label) pairs.
    methods: tuple = ()

    @classmethod
    def is_configured(cls) -> bool:
        return False

    def start(self, *, payment, request, method: str = "") -> StartResult:
        raise NotImplementedError

    # -- notifications ---------------------------------------------------------------------------------
    def verify_notification(self, *, body: bytes, headers, post) -> VerifiedNotification:
        """Check a gateway's notification; raise :class:`NotificationRefused` when it must be refused."""
        raise NotImplementedError

    @classmethod
    def answer(cls, *, accepted: bool, message: str = "") -> HttpResponse:
        """The reply the gateway expects: success stops its retries, failure asks it to try again."""
        raise NotImplementedError

    # -- the gateway's view of a trade -----------------------------------------------------------------
    def query(self, *, payment) -> TradeQuery:
        raise NotImplementedError

    def close(self, *, payment) -> None:
        """Close an unpaid trade so it can no longer be paid (nothing to do if the gateway never saw it)."""
        raise NotImplementedError

    # -- refunds ---------------------------------------------------------------------------------------
    def refund(self, *, refund, returns=()) -> RefundResult:
        """Ask for a refund. Idempotent at the gateway by ``refund.out_refund_no``.

        ``returns``: what merchants give back first because the refund reaches money already split
        out to them (payments.settlement.planned_returns): each ``account``, ``amount_fen``,
        ``out_request_no`` (the split) and ``out_return_no`` (idempotency of the return)."""
        raise NotImplementedError

    def query_refund(self, *, refund) -> RefundResult | None:
        """The gateway's state of a refund; ``None`` when it does not know it (safe to send again)."""
        raise NotImplementedError

    # -- split settlement (payments/settlement.py) --------------------------------------------------------
    def split(self, *, payment, out_request_no: str, receivers: list[dict]) -> dict:
        """Split a settled payment between receivers (Alipay order settle, WeChat profit sharing).

        Returns at least ``out_request_no``; ``state == "PROCESSING"`` means accepted, not final
        (asked again with :meth:`split_state`)."""
        raise NotImplementedError(f"{self.name} cannot split payments")

    def split_state(self, *, payment, out_request_no: str) -> SplitState:
        """The gateway's view of an accepted split."""
        return SplitState.FINISHED


# -- key files ---------------------------------------------------------------------------------------------


def read_key_file(path: str, *, setting: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise KeyFileUnreadable(f"{setting}: cannot read {path!r} ({exc.strerror or exc})") from None


def _der_from_bare_base64(data: bytes) -> bytes | None:
    """Keys copied from the Alipay/WeChat consoles are often bare base64 without PEM lines."""
    text = b"".join(data.split())
    try:
        return base64.b64decode(text, validate=True) if text else None
    except (binascii.Error, ValueError):
        return None


def load_rsa_private_key(data: bytes, *, setting: str) -> tuple[rsa.RSAPrivateKey, str]:
    """Parse an RSA private key given as PEM (PKCS#1 or PKCS#8) or bare base64 DER.

    Returns the key and the format it was stored in: ``"pkcs1"`` or ``"pkcs8"``.
    """
    stripped = data.strip()
    key = None
    found = ""
    try:
        if stripped.startswith(b"-----BEGIN"):
            if b"ENCRYPTED" in stripped.split(b"\n", 1)[0] or b"Proc-Type: 4,ENCRYPTED" in stripped:
                raise KeyFormatError(f"{setting}: the private key is encrypted with a passphrase; store it unencrypted")
            found = "pkcs1" if stripped.startswith(b"-----BEGIN RSA PRIVATE KEY") else "pkcs8"
            key = serialization.load_pem_private_key(stripped, password=None)
        else:
            der = _der_from_bare_base64(stripped)
            if der is not None:
                key = serialization.load_der_private_key(der, password=None)
                pkcs1 = key.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                )
                found = "pkcs1" if pkcs1 == der else "pkcs8"
    except KeyFormatError:
        raise
    except (ValueError, TypeError):
        key = None
    if key is None:
        raise KeyFormatError(
            f"{setting}: not an RSA private key (expected PEM or bare base64, PKCS#1 or PKCS#8)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError(f"{setting}: the private key is not an RSA key")
    if key.key_size < 2048:
        raise KeyFormatError(f"{setting}: the RSA key has {key.key_size} bits; RSA2 needs 2048")
    return key, found


def load_rsa_public_key(data: bytes, *, setting: str) -> rsa.RSAPublicKey:
    """Parse an RSA public key given as SubjectPublicKeyInfo PEM or bare base64 DER."""
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN CERTIFICATE"):
        raise KeyFormatError(f"{setting}: this is a certificate; a public key (BEGIN PUBLIC KEY) is expected")
    if b"PRIVATE KEY" in stripped[:64]:
        raise KeyFormatError(f"{setting}: this is a private key; the gateway's public key is expected")
    key = None
    try:
        if stripped.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(stripped)
        else:
            der = _der_from_bare_base64(stripped)
            if der is not None:
                key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        key = None
    if key is None:
        raise KeyFormatError(f"{setting}: not a public key (expected PEM or bare base64 SubjectPublicKeyInfo)")
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFormatError(f"{setting}: the public key is not an RSA key")
    return key


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def same_public_key(a: rsa.RSAPublicKey, b: rsa.RSAPublicKey) -> bool:
    return a.public_numbers() == b.public_numbers()
