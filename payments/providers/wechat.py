"""WeChat Pay (微信支付) API v3 through wechatpayv3: Native QR payments, shown on our own page.

* Modes: **public-key mode** (``WECHATPAY_PUBLIC_KEY_PATH`` is the platform public key,
  ``WECHATPAY_PUBLIC_KEY_ID`` its id ``PUB_KEY_ID_…``) is preferred. **Certificate mode**:
  ``WECHATPAY_PUBLIC_KEY_PATH`` holds the platform certificate instead; its serial number is the
  expected ``Wechatpay-Serial`` and its public key verifies. Either way the SDK is given one key and
  its id, so it never downloads certificates (``/v3/certificates``) — in certificate mode a rotated
  platform certificate is installed by configuration.
* Notifications: the ``Wechatpay-Serial`` header must be the configured one *before* the SDK sees
  the message (an unknown serial makes the SDK download certificates synchronously), the
  ``Wechatpay-Timestamp`` must be within five minutes, then ``WeChatPay.callback`` verifies the
  signature and decrypts the resource with the APIv3 key. ``mchid`` (and ``appid`` for payments)
  must be ours. TRANSACTION.SUCCESS with trade_state SUCCESS is a payment; REFUND.* are refunds.
  The answer is 204 on success, or 4xx/5xx with ``{"code": "FAIL", "message": …}``.
* Calls go through the SDK over ``requests`` to api.mch.weixin.qq.com; every 2xx answer's
  signature is verified by the SDK. Non-2xx answers are returned, not raised.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

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
    load_rsa_private_key,
    load_rsa_public_key,
    public_pem,
    read_key_file,
)

logger = logging.getLogger(__name__)
MAX_CLOCK_SKEW = 300  # seconds: older (or further in the future) notifications are refused
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
SETTINGS = (
    "WECHATPAY_MCHID", "WECHATPAY_APPID", "WECHATPAY_PRIVATE_KEY_PATH", "WECHATPAY_CERT_SERIAL_NO",
    "WECHATPAY_APIV3_KEY", "WECHATPAY_PUBLIC_KEY_PATH",
)  # fmt: skip
TRADE_STATES = {
    "SUCCESS": TradeState.PAID,
    "REFUND": TradeState.PAID,  # it was paid; a refund followed
    "NOTPAY": TradeState.OPEN,
    "USERPAYING": TradeState.OPEN,
    "CLOSED": TradeState.CLOSED,
    "REVOKED": TradeState.CLOSED,
    "PAYERROR": TradeState.CLOSED,
}
REFUND_FINAL = {"SUCCESS": True, "CLOSED": False, "ABNORMAL": False}


# -- keys ------------------------------------------------------------------------------------------------


class Keys:
    def __init__(self, *, private_pem: str, platform_pem: str, platform_id: str, mode: str, remarks: list[str]):
        self.private_pem, self.platform_pem, self.platform_id = private_pem, platform_pem, platform_id
        self.mode, self.remarks = mode, remarks


def load_keys(*, private_path: str, platform_path: str, public_key_id: str) -> Keys:
    """Read and check the merchant key and the platform key or certificate. Raises KeyFormatError."""
    remarks = []
    private, stored_as = load_rsa_private_key(
        read_key_file(private_path, setting="WECHATPAY_PRIVATE_KEY_PATH"), setting="WECHATPAY_PRIVATE_KEY_PATH"
    )
    if stored_as == "pkcs1":
        remarks.append(
            "WECHATPAY_PRIVATE_KEY_PATH holds a PKCS#1 key; wechatpayv3 needs PKCS#8, it is converted on load"
        )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    data = read_key_file(platform_path, setting="WECHATPAY_PUBLIC_KEY_PATH")
    if data.strip().startswith(b"-----BEGIN CERTIFICATE"):
        try:
            certificate = x509.load_pem_x509_certificate(data.strip())
        except ValueError:
            raise KeyFormatError("WECHATPAY_PUBLIC_KEY_PATH: the platform certificate cannot be parsed") from None
        serial = format(certificate.serial_number, "X")
        if public_key_id and public_key_id.upper() != serial:
            raise KeyFormatError(
                f"WECHATPAY_PUBLIC_KEY_ID {public_key_id!r} is not the serial of the platform certificate ({serial})"
            )
        now = datetime.now(UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise KeyFormatError(
                f"WECHATPAY_PUBLIC_KEY_PATH: the platform certificate {serial} is not valid now "
                f"({certificate.not_valid_before_utc:%Y-%m-%d} to {certificate.not_valid_after_utc:%Y-%m-%d})"
            )
        public = load_rsa_public_key(
            certificate.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            setting="WECHATPAY_PUBLIC_KEY_PATH",
        )
        return Keys(private_pem=private_pem, platform_pem=public_pem(public), platform_id=serial, mode="certificate",
                    remarks=remarks)  # fmt: skip
    public = load_rsa_public_key(data, setting="WECHATPAY_PUBLIC_KEY_PATH")
    if not public_key_id:
        raise KeyFormatError(
            "WECHATPAY_PUBLIC_KEY_ID is not set: public-key mode needs the id (PUB_KEY_ID_…) shown next to the key"
        )
    if public.public_numbers() == private.public_key().public_numbers():
        raise KeyFormatError("WECHATPAY_PUBLIC_KEY_PATH holds the merchant's own key, not WeChat Pay's platform key")
    return Keys(private_pem=private_pem, platform_pem=public_pem(public), platform_id=public_key_id, mode="public_key",
                remarks=remarks)  # fmt: skip


_cache: dict[tuple, Keys] = {}
_lock = threading.Lock()


def _stamp(path: str) -> tuple:
    try:
        info = os.stat(path)
    except OSError:
        return (path, None)
    return (path, info.st_mtime_ns, info.st_size)


def _keys() -> Keys:
    stamp = (
        _stamp(settings.WECHATPAY_PRIVATE_KEY_PATH), _stamp(settings.WECHATPAY_PUBLIC_KEY_PATH),
        settings.WECHATPAY_PUBLIC_KEY_ID,
    )  # fmt: skip
    with _lock:
        keys = _cache.get(stamp)
    if keys is None:
        keys = load_keys(
            private_path=settings.WECHATPAY_PRIVATE_KEY_PATH, platform_path=settings.WECHATPAY_PUBLIC_KEY_PATH,
            public_key_id=settings.WECHATPAY_PUBLIC_KEY_ID,
        )  # fmt: skip
        with _lock:
            _cache.clear()
            _cache[stamp] = keys
    return keys


def check_apiv3_key(value: str) -> str | None:
    """The APIv3 key is the AES-256-GCM key of notifications: exactly 32 ASCII characters."""
    if len(value.encode("utf-8")) != 32:
        return f"WECHATPAY_APIV3_KEY must be exactly 32 characters (it has {len(value)})"
    return None


def _client():
    from wechatpayv3 import WeChatPay, WeChatPayType

    keys = _keys()
    return WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=settings.WECHATPAY_MCHID,
        private_key=keys.private_pem,
        cert_serial_no=settings.WECHATPAY_CERT_SERIAL_NO,
        appid=settings.WECHATPAY_APPID,
        apiv3_key=settings.WECHATPAY_APIV3_KEY,
        notify_url=settings.PAYMENT_NOTIFY_BASE_URL.rstrip("/") + reverse("payments:wechat_notify"),
        public_key=keys.platform_pem,
        public_key_id=keys.platform_id,
        timeout=(5, 15),
    )


def _call(method: str, **kwargs) -> tuple[int, dict]:
    """Call the SDK; the SDK verifies the signature of every 2xx answer (and raises if it is wrong)."""
    import requests

    try:
        code, text = getattr(_client(), method)(**kwargs)
    except KeyFormatError:
        raise
    except requests.RequestException as exc:
        raise GatewayUnavailable(f"wechat pay: {method} could not reach the gateway ({type(exc).__name__})") from None
    except Exception as exc:  # "failed to verify the signature" and other SDK errors
        raise GatewayUnavailable(f"wechat pay: {method} answer not trustworthy ({exc})") from None
    if code >= 500:
        raise GatewayUnavailable(f"wechat pay: {method} answered HTTP {code}")
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {"message": text[:200]}
    return code, data


def _why(code: int, data: dict) -> str:
    return f"HTTP {code} {data.get('code', '')} {data.get('message', '')}".strip()


def _rfc3339(moment: datetime) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds")


def _description(payment) -> str:
    """What the buyer sees in WeChat; the API takes at most 127 bytes."""
    item = payment.order.items.first()
    text = f"{item.product_title} {item.sku_label}" if item else str(settings.SHOP_NAME)
    suffix = f" ({payment.order.number})"
    room = 127 - len(suffix.encode("utf-8"))
    return text.encode("utf-8")[:room].decode("utf-8", "ignore") + suffix


class WeChatPayProvider(Provider):
    name = "wechat"
    label = _("WeChat Pay")

    @classmethod
    def is_configured(cls) -> bool:
        return all(getattr(settings, name, "") for name in SETTINGS)

    # -- paying ----------------------------------------------------------------------------------------
    def start(self, *, payment, request, method: str = "") -> StartResult:
        # settle_info.profit_sharing: the funds of a goods order stay frozen until the split
        # (payments/settlement.py), which unfreezes the rest. Top-ups are never split.
        code, data = _call(
            "pay",
            description=_description(payment),
            out_trade_no=payment.out_trade_no,
            amount={"total": payment.amount_fen, "currency": "CNY"},
            time_expire=_rfc3339(payment.order.reserved_until),
            settle_info={"profit_sharing": payment.order.kind == payment.order.Kind.GOODS},
        )
        if code not in (200, 201) or not data.get("code_url"):
            raise ProviderError(f"wechat pay refused the payment: {_why(code, data)}")
        return StartResult(qr_content=data["code_url"])

    # -- notifications ---------------------------------------------------------------------------------
    def verify_notification(self, *, body: bytes, headers, post) -> VerifiedNotification:
        keys = _keys()
        wanted = {
            "Wechatpay-Serial": headers.get("Wechatpay-Serial", ""),
            "Wechatpay-Timestamp": headers.get("Wechatpay-Timestamp", ""),
            "Wechatpay-Nonce": headers.get("Wechatpay-Nonce", ""),
            "Wechatpay-Signature": headers.get("Wechatpay-Signature", ""),
            "Wechatpay-Signature-Type": headers.get("Wechatpay-Signature-Type", ""),
        }
        serial = wanted["Wechatpay-Serial"]
        if not serial or serial.upper() != keys.platform_id.upper():
            raise NotificationRefused(f"Wechatpay-Serial {serial[:80]!r} is not the configured platform key")
        if wanted["Wechatpay-Signature-Type"] != SIGNATURE_TYPE:
            raise NotificationRefused(f"signature type {wanted['Wechatpay-Signature-Type'][:40]!r} is not supported")
        try:
            stamp = int(wanted["Wechatpay-Timestamp"])
        except ValueError:
            raise NotificationRefused("Wechatpay-Timestamp is missing or not a number") from None
        if abs(time.time() - stamp) > MAX_CLOCK_SKEW:
            raise NotificationRefused(f"Wechatpay-Timestamp {stamp} is more than {MAX_CLOCK_SKEW} s away from now")
        wanted["Wechatpay-Serial"] = keys.platform_id  # the SDK compares it exactly
        try:
            result = _client().callback(wanted, body)
        except Exception as exc:
            raise NotificationRefused(f"the SDK refused the message ({type(exc).__name__})") from None
        if not result:
            raise NotificationRefused("signature does not verify, or the resource does not decrypt with our APIv3 key")
        resource = result.get("resource") or {}
        parsed = {key: value for key, value in result.items() if key != "resource"}
        parsed["resource"] = resource
        out_trade_no = resource.get("out_trade_no", "")

        def refuse(reason):
            return NotificationRefused(reason, parsed=parsed, verified=True, out_trade_no=out_trade_no)

        if resource.get("mchid") != settings.WECHATPAY_MCHID:
            raise refuse(f"mchid {resource.get('mchid')!r} is not ours")
        event = result.get("event_type", "")
        common = {"out_trade_no": out_trade_no, "parsed": parsed, "notify_id": str(result.get("id", ""))[:64]}
        if not out_trade_no:
            raise refuse("no out_trade_no")
        amount = resource.get("amount") or {}
        if event.startswith("TRANSACTION."):
            if resource.get("appid") != settings.WECHATPAY_APPID:
                raise refuse(f"appid {resource.get('appid')!r} is not ours")
            if amount.get("currency", "CNY") != "CNY" or not isinstance(amount.get("total"), int):
                raise refuse("amount is missing or not in CNY")
            state = resource.get("trade_state", "")
            return VerifiedNotification(
                kind="payment", state=state, succeeded=state == "SUCCESS", amount_fen=amount["total"],
                gateway_trade_no=resource.get("transaction_id", ""), **common,
            )  # fmt: skip
        if event.startswith("REFUND."):
            state = resource.get("refund_status", "")
            if not resource.get("out_refund_no") or not isinstance(amount.get("refund"), int):
                raise refuse("refund without out_refund_no or amount")
            return VerifiedNotification(
                kind="refund", state=state, succeeded=REFUND_FINAL.get(state, False),
                refund_final=state in REFUND_FINAL, out_refund_no=resource["out_refund_no"],
                gateway_refund_no=resource.get("refund_id", ""), gateway_trade_no=resource.get("transaction_id", ""),
                refund_fen=amount["refund"], **common,
            )  # fmt: skip
        raise refuse(f"event type {event[:40]!r} is not handled")

    @classmethod
    def answer(cls, *, accepted: bool, message: str = "") -> HttpResponse:
        if accepted:
            return HttpResponse(status=204)
        return JsonResponse({"code": "FAIL", "message": (message or "refused")[:200]}, status=400)

    # -- the gateway's view of a trade -----------------------------------------------------------------
    def query(self, *, payment) -> TradeQuery:
        code, data = _call("query", out_trade_no=payment.out_trade_no)
        if code == 404 or data.get("code") == "ORDER_NOT_EXIST":
            return TradeQuery(state=TradeState.NOT_FOUND)
        if code != 200:
            raise ProviderError(f"wechat pay query refused: {_why(code, data)}")
        if data.get("out_trade_no") != payment.out_trade_no or data.get("mchid") != settings.WECHATPAY_MCHID:
            raise GatewayUnavailable("wechat pay: the query answer is about another trade or merchant")
        raw = data.get("trade_state", "")
        amount = (data.get("amount") or {}).get("total")
        return TradeQuery(
            state=TRADE_STATES.get(raw, TradeState.OPEN), gateway_trade_no=data.get("transaction_id", ""),
            amount_fen=amount if isinstance(amount, int) else None, raw_state=raw,
        )  # fmt: skip

    def close(self, *, payment) -> None:
        code, data = _call("close", out_trade_no=payment.out_trade_no)
        if code in (200, 204) or data.get("code") == "ORDER_NOT_EXIST" or code == 404:
            return
        raise ProviderError(f"wechat pay close refused: {_why(code, data)}")

    # -- refunds ---------------------------------------------------------------------------------------
    def refund(self, *, refund, returns=()) -> RefundResult:
        for back in returns:  # the merchants' split-out shares come back first (分账回退)
            outcome = self._return_split(back, refund)
            if outcome is not None:
                return outcome
        try:
            code, data = _call(
                "refund",
                out_refund_no=refund.out_refund_no,
                amount={"refund": refund.amount_fen, "total": refund.payment.amount_fen, "currency": "CNY"},
                out_trade_no=refund.payment.out_trade_no,
                reason=str(refund.get_reason_display())[:80],
                notify_url=settings.PAYMENT_NOTIFY_BASE_URL.rstrip("/") + reverse("payments:wechat_notify"),
            )
        except GatewayUnavailable:
            return RefundResult(succeeded=False, pending=True)
        if code != 200:
            if data.get("code") in ("SYSTEM_ERROR", "FREQUENCY_LIMITED", "NO_AUTH_RETRY"):
                return RefundResult(succeeded=False, pending=True)
            return RefundResult(succeeded=False, failure=f"wechat pay refused the refund: {_why(code, data)}")
        return self._refund_result(data)

    def query_refund(self, *, refund) -> RefundResult | None:
        code, data = _call("query_refund", out_refund_no=refund.out_refund_no)
        if code == 404 or data.get("code") == "RESOURCE_NOT_EXISTS":
            return None
        if code != 200:
            raise ProviderError(f"wechat pay refund query refused: {_why(code, data)}")
        return self._refund_result(data)

    @staticmethod
    def _return_split(back: dict, refund) -> RefundResult | None:
        """``profitsharing_return`` of one merchant's share; ``None`` when it is back, else why the
        refund must wait (pending: asked again with the same ``out_return_no``) or fails."""
        if not back.get("account"):
            return RefundResult(succeeded=False, failure=f"merchant {back['merchant_id']} has no WeChat receiver id")
        try:
            code, data = _call(
                "profitsharing_return", out_return_no=back["out_return_no"], return_mchid=back["account"],
                amount=back["amount_fen"], description=f"refund {refund.out_refund_no}"[:80],
                out_order_no=back["out_request_no"],
            )  # fmt: skip
        except GatewayUnavailable:
            return RefundResult(succeeded=False, pending=True)
        if code == 200 and data.get("result") == "SUCCESS":
            return None
        if code == 200 and data.get("result") == "PROCESSING":
            return RefundResult(succeeded=False, pending=True)
        if data.get("code") in ("SYSTEM_ERROR", "FREQUENCY_LIMITED"):
            return RefundResult(succeeded=False, pending=True)
        return RefundResult(succeeded=False, failure=f"wechat pay refused the split return: {_why(code, data)}")

    @staticmethod
    def _refund_result(data: dict) -> RefundResult:
        status, refund_id = data.get("status", ""), data.get("refund_id", "")
        if status == "SUCCESS":
            return RefundResult(succeeded=True, gateway_refund_no=refund_id)
        if status in ("CLOSED", "ABNORMAL"):
            return RefundResult(succeeded=False, gateway_refund_no=refund_id, failure=f"wechat pay refund {status}")
        return RefundResult(succeeded=False, pending=True, gateway_refund_no=refund_id)

    # -- split settlement ------------------------------------------------------------------------------
    def split(self, *, payment, out_request_no: str, receivers: list[dict]) -> dict:
        """Profit sharing (分账) of a paid trade: each merchant's share to its own WeChat Pay merchant id.

        Direction: the platform's mchid takes the payment and shares the merchants' part out; what is
        left (the commission) is unfrozen for the platform (``unfreeze_unsplit``). WeChat caps what a
        trade may share at 30% by default, so with a 10% commission the platform must have its cap
        raised (``WECHATPAY_PROFIT_SHARING_MAX_RATIO`` says what it is); above the cap the split is
        refused here, before any call, with a clear reason (retried, then operators are alerted).
        Each receiver is added first (``profitsharing_add_receiver`` is idempotent at WeChat).
        Idempotent by ``out_order_no`` = ``out_request_no``.
        """
        shared = sum(receiver["amount_fen"] for receiver in receivers)
        cap = int(payment.amount_fen * Decimal(str(settings.WECHATPAY_PROFIT_SHARING_MAX_RATIO)))
        if shared > cap:
            raise ProviderError(
                f"wechat profit sharing: {shared} fen is more than the {settings.WECHATPAY_PROFIT_SHARING_MAX_RATIO} "
                f"cap of this {payment.amount_fen}-fen trade ({cap} fen); ask WeChat Pay to raise the cap"
            )
        missing = [r for r in receivers if not r.get("account") or not r.get("name")]
        if missing:
            raise ProviderError(
                f"wechat profit sharing: merchant {missing[0].get('merchant_id')} has no receiver account or legal name"
            )
        for receiver in receivers:
            code, data = _call(
                "profitsharing_add_receiver", account_type="MERCHANT_ID", account=receiver["account"],
                relation_type="PARTNER", name=receiver["name"],
            )  # fmt: skip
            if code != 200:
                raise ProviderError(f"wechat pay refused the receiver {receiver['account']}: {_why(code, data)}")
        code, data = _call(
            "profitsharing_order", transaction_id=payment.gateway_trade_no, out_order_no=out_request_no,
            receivers=[
                {"type": "MERCHANT_ID", "account": r["account"], "amount": r["amount_fen"],
                 "description": str(r.get("description", ""))[:80]}
                for r in receivers
            ],
            unfreeze_unsplit=True,
        )  # fmt: skip
        if code != 200:
            if data.get("code") in ("SYSTEM_ERROR", "FREQUENCY_LIMITED", "RESOURCE_ALREADY_EXISTS"):
                raise GatewayUnavailable(f"wechat profit sharing: {_why(code, data)}")
            raise ProviderError(f"wechat pay refused the profit sharing: {_why(code, data)}")
        if data.get("out_order_no") != out_request_no:
            raise GatewayUnavailable("wechat profit sharing: the answer is about another split")
        return {"out_request_no": out_request_no, "settle_no": data.get("order_id", ""), "state": data.get("state", "")}

    def split_state(self, *, payment, out_request_no: str) -> SplitState:
        code, data = _call(
            "profitsharing_order_query", transaction_id=payment.gateway_trade_no, out_order_no=out_request_no
        )
        if code != 200:
            raise ProviderError(f"wechat profit sharing query refused: {_why(code, data)}")
        if data.get("out_order_no") != out_request_no:
            raise GatewayUnavailable("wechat profit sharing: the answer is about another split")
        results = {receiver.get("result") for receiver in data.get("receivers") or []}
        if data.get("state") == "FINISHED":
            return SplitState.CLOSED if "CLOSED" in results else SplitState.FINISHED
        return SplitState.PROCESSING
