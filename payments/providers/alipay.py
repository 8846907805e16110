"""Alipay (支付宝) through the official alipay-sdk-python, public-key mode, RSA2 only.

* Paying: page pay (``alipay.trade.page.pay``) on a desktop, WAP pay (``alipay.trade.wap.pay``,
  ``QUICK_WAP_WAY``) on a phone — both a signed redirect, no HTTP call of ours — or, as the ``qr``
  method, a precreated QR code (``alipay.trade.precreate``) shown on our own page. Every trade
  carries ``time_expire`` = the order's reservation deadline, so Alipay refuses a payment after it.
* Notifications: the form POST is verified with Alipay's public key through the SDK's own
  ``verify_with_rsa`` over the sorted ``k=v`` string without ``sign``/``sign_type``. ``sign_type``
  must be ``RSA2`` (the SDK would also accept SHA1), and
  ``app_id`` must be ours. TRADE_SUCCESS and TRADE_FINISHED are success states; a notification
  carrying ``out_biz_no`` is about a refund (Alipay reports refunds on the same URL). The answer is
  the plain text ``success`` or ``failure``.
* Calls (query, close, refund, refund query, precreate) go through the SDK, which signs requests
  and verifies every response's signature (a forged answer raises); success is ``code == "10000"``.

SDK facts this module works around (../shared/payments/README.md):

* The app private key must be PKCS#1: a PKCS#8 key (or the bare base64 the console shows) is
  converted on load with ``cryptography``; garbage gives a :class:`KeyFormatError` naming the setting.
* ``WebUtils.get_http_connection`` drops a port given in the gateway URL; it is replaced once by a
  version that keeps it. Any SDK transport failure becomes :class:`GatewayUnavailable`.
* Request timestamps are the SDK's naive ``datetime.now()``: the process runs in Asia/Shanghai
  (Django sets TZ from TIME_ZONE; ``manage.py check`` warns otherwise). Our own ``time_expire``
  is converted to Beijing time explicitly.

The SDK package is large and slow to import, so it is imported when first used.
"""

from __future__ import annotations

import binascii
import http.client
import json
import logging
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from kameng.money import fen_to_yuan_str, yuan_str_to_fen
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
    load_rsa_private_key,
    load_rsa_public_key,
    public_pem,
    read_key_file,
    same_public_key,
)

logger = logging.getLogger(__name__)
BEIJING = ZoneInfo("Asia/Shanghai")
SUCCESS_STATES = {"TRADE_SUCCESS", "TRADE_FINISHED"}
TRADE_STATES = {
    "WAIT_BUYER_PAY": TradeState.OPEN,
    "TRADE_SUCCESS": TradeState.PAID,
    "TRADE_FINISHED": TradeState.PAID,
    "TRADE_CLOSED": TradeState.CLOSED,
}
# Sub-codes whose outcome is unknown: the same request may be sent again later.
RETRYABLE = {
    "ACQ.SYSTEM_ERROR", "ACQ.REFUND_FEE_ERROR_BUSY", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error", "SYSTEM_ERROR",
}  # fmt: skip
PHONE_AGENTS = re.compile(r"Mobile|Android|iPhone|iPod|iPad|HarmonyOS|OpenHarmony|Windows Phone", re.IGNORECASE)
SETTINGS = ("ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY_PATH", "ALIPAY_PUBLIC_KEY_PATH")


# -- keys ------------------------------------------------------------------------------------------------

_key_cache: dict[tuple, tuple[str, str]] = {}
_key_lock = threading.Lock()


def _stamp(path: str) -> tuple:
    try:
        info = os.stat(path)
    except OSError:
        return (path, None)
    return (path, info.st_mtime_ns, info.st_size)


def load_keys(*, private_path: str, public_path: str) -> tuple[str, str, list[str]]:
    """The app private key as PKCS#1 PEM and Alipay's public key as PEM, plus remarks for operators
    (e.g. "stored as PKCS#8, converted"). Raises :class:`KeyFormatError` with a clear message."""
    remarks = []
    private, stored_as = load_rsa_private_key(
        read_key_file(private_path, setting="ALIPAY_APP_PRIVATE_KEY_PATH"), setting="ALIPAY_APP_PRIVATE_KEY_PATH"
    )
    if stored_as == "pkcs8":
        remarks.append(
            "ALIPAY_APP_PRIVATE_KEY_PATH holds a PKCS#8 key; alipay-sdk-python needs PKCS#1, so it is converted on "
            "load. Convert the file once with `openssl rsa -in KEY -traditional` to silence this."
        )
    public = load_rsa_public_key(
        read_key_file(public_path, setting="ALIPAY_PUBLIC_KEY_PATH"), setting="ALIPAY_PUBLIC_KEY_PATH"
    )
    if same_public_key(public, private.public_key()):
        raise KeyFormatError(
            "ALIPAY_PUBLIC_KEY_PATH holds your app's own public key; it must be Alipay's public key (支付宝公钥)"
        )
    pkcs1 = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    return pkcs1, public_pem(public), remarks


def _keys() -> tuple[str, str]:
    private_path, public_path = settings.ALIPAY_APP_PRIVATE_KEY_PATH, settings.ALIPAY_PUBLIC_KEY_PATH
    stamp = (_stamp(private_path), _stamp(public_path))
    with _key_lock:
        cached = _key_cache.get(stamp)
    if cached is None:
        private, public, _remarks = load_keys(private_path=private_path, public_path=public_path)
        cached = (private, public)
        with _key_lock:
            _key_cache.clear()
            _key_cache[stamp] = cached
    return cached


# -- the SDK ---------------------------------------------------------------------------------------------


def _get_http_connection(url, query_string, timeout):
    """WebUtils.get_http_connection, keeping the port of the gateway URL (the SDK's adds an int to a str)."""
    parts = urllib.parse.urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{query_string}", cls(
        parts.hostname, parts.port, timeout=timeout
    )


_patched = False


def _sdk_client():
    global _patched
    from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
    from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
    from alipay.aop.api.util import WebUtils

    if not _patched:
        WebUtils.get_http_connection = _get_http_connection
        _patched = True
    private, public = _keys()
    config = AlipayClientConfig()
    config.server_url = settings.ALIPAY_GATEWAY_URL
    config.app_id = settings.ALIPAY_APP_ID
    config.app_private_key = private
    config.alipay_public_key = public
    config.sign_type = "RSA2"
    config.charset = "utf-8"
    config.timeout = 15
    return DefaultAlipayClient(config)  # no logger: the SDK would log every signed request


def _beijing(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _subject(payment) -> str:
    """What the buyer sees on the cashier; Alipay refuses / = & in a subject."""
    items = list(payment.order.items.all()[:2])
    if items:
        text = f"{items[0].product_title} {items[0].sku_label}"
        if len(items) > 1:
            text += " …"
    else:
        text = str(settings.SHOP_NAME)
    text = re.sub(r"[/=&]", " ", text).strip()
    return f"{text[:100]} ({payment.order.number})"


def _will_be_split(payment) -> bool:
    """Goods orders are split after delivery (payments/settlement.py): their funds are frozen for
    the royalty (``royalty_freeze``) so the split cannot find them spent. Top-ups are never split."""
    return payment.order.kind == payment.order.Kind.GOODS


def _absolute(base: str, path: str) -> str:
    return base.rstrip("/") + path


class AlipayProvider(Provider):
    name = "alipay"
    label = _("Alipay")
    methods = (("qr", _("Alipay QR code")),)

    @classmethod
    def is_configured(cls) -> bool:
        return all(getattr(settings, name, "") for name in SETTINGS)

    # -- paying ----------------------------------------------------------------------------------------
    def start(self, *, payment, request, method: str = "") -> StartResult:
        if method == "qr":
            return self._precreate(payment)
        agent = request.META.get("HTTP_USER_AGENT", "") if request is not None else ""
        if PHONE_AGENTS.search(agent):
            from alipay.aop.api.domain.AlipayTradeWapPayModel import AlipayTradeWapPayModel
            from alipay.aop.api.request.AlipayTradeWapPayRequest import AlipayTradeWapPayRequest

            model = AlipayTradeWapPayModel()
            model.product_code = "QUICK_WAP_WAY"
            model.quit_url = _absolute(settings.SITE_URL, payment.order.get_absolute_url())
            request_class = AlipayTradeWapPayRequest
        else:
            from alipay.aop.api.domain.AlipayTradePagePayModel import AlipayTradePagePayModel
            from alipay.aop.api.request.AlipayTradePagePayRequest import AlipayTradePagePayRequest

            model = AlipayTradePagePayModel()
            model.product_code = "FAST_INSTANT_TRADE_PAY"
            request_class = AlipayTradePagePayRequest
        model.out_trade_no = payment.out_trade_no
        model.total_amount = fen_to_yuan_str(payment.amount_fen)
        model.subject = _subject(payment)
        model.time_expire = _beijing(payment.order.reserved_until)
        if _will_be_split(payment):
            from alipay.aop.api.domain.ExtendParams import ExtendParams

            model.extend_params = ExtendParams()
            model.extend_params.royalty_freeze = "true"
        sdk_request = request_class(biz_model=model)
        sdk_request.notify_url = _absolute(settings.PAYMENT_NOTIFY_BASE_URL, reverse("payments:alipay_notify"))
        sdk_request.return_url = _absolute(
            settings.SITE_URL, reverse("payments:return", kwargs={"out_trade_no": payment.out_trade_no})
        )
        try:
            url = _sdk_client().page_execute(sdk_request, http_method="GET")
        except KeyFormatError:
            raise
        except Exception as exc:  # the SDK signs locally; a failure here is a key problem
            raise ProviderError(f"alipay: could not sign the payment request ({type(exc).__name__})") from None
        return StartResult(redirect_url=url)

    def _precreate(self, payment) -> StartResult:
        from alipay.aop.api.request.AlipayTradePrecreateRequest import AlipayTradePrecreateRequest

        sdk_request = AlipayTradePrecreateRequest()
        sdk_request.biz_content = {
            "out_trade_no": payment.out_trade_no,
            "total_amount": fen_to_yuan_str(payment.amount_fen),
            "subject": _subject(payment),
            "time_expire": _beijing(payment.order.reserved_until),
            **({"extend_params": {"royalty_freeze": "true"}} if _will_be_split(payment) else {}),
        }
        sdk_request.notify_url = _absolute(settings.PAYMENT_NOTIFY_BASE_URL, reverse("payments:alipay_notify"))
        data = self._execute(sdk_request)
        if data.get("code") != "10000" or not data.get("qr_code"):
            raise ProviderError(f"alipay precreate refused: {_why(data)}")
        return StartResult(qr_content=data["qr_code"])

    def _execute(self, sdk_request) -> dict:
        """Send a request through the SDK; the SDK verifies the answer's signature."""
        try:
            text = _sdk_client().execute(sdk_request)
        except KeyFormatError:
            raise
        except Exception as exc:  # RequestException, ResponseException, TypeError (non-200), OSError…
            raise GatewayUnavailable(f"alipay: no trustworthy answer ({type(exc).__name__})") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise GatewayUnavailable("alipay: the answer is not JSON") from None
        if data.get("code") == "20000" or data.get("sub_code") in RETRYABLE:
            raise GatewayUnavailable(f"alipay: gateway busy ({_why(data)})")
        return data

    # -- notifications ---------------------------------------------------------------------------------
    def verify_notification(self, *, body: bytes, headers, post) -> VerifiedNotification:
        import rsa
        from alipay.aop.api.util.SignatureUtils import verify_with_rsa

        params = {key: post.get(key) for key in post}
        parsed = dict(params)
        out_trade_no = params.get("out_trade_no", "")
        sign = params.pop("sign", "")
        sign_type = params.pop("sign_type", "")
        parsed.pop("sign", None)

        def refuse(reason, *, verified=False):
            return NotificationRefused(reason, parsed=parsed, verified=verified, out_trade_no=out_trade_no)

        if not sign:
            raise refuse("no signature")
        if sign_type != "RSA2":
            raise refuse(f"sign_type {sign_type!r} refused: only RSA2 is accepted")
        _private, public = _keys()

        def verifies(content: str) -> bool:
            try:
                return verify_with_rsa(public, content.encode("utf-8"), sign)
            except (rsa.VerificationError, binascii.Error, ValueError, TypeError):
                return False

        # Alipay's own SDKs disagree on whether empty values are part of the signed text (Java and
        # Node keep them, PHP drops them); a message verifies under one of the two readings.
        ordered = sorted(params.items())
        valid = verifies("&".join(f"{key}={value}" for key, value in ordered))
        if not valid and any(value == "" for _key, value in ordered):
            valid = verifies("&".join(f"{key}={value}" for key, value in ordered if value != ""))
        if not valid:
            raise refuse("signature does not verify with Alipay's public key")
        if params.get("app_id") != settings.ALIPAY_APP_ID:
            raise refuse(f"app_id {params.get('app_id')!r} is not ours", verified=True)
        if not out_trade_no:
            raise refuse("no out_trade_no", verified=True)
        state = params.get("trade_status", "")
        common = {
            "out_trade_no": out_trade_no,
            "state": state,
            "parsed": parsed,
            "gateway_trade_no": params.get("trade_no", ""),
            "notify_id": params.get("notify_id", ""),
        }
        try:
            if params.get("out_biz_no") and params.get("refund_fee"):
                # A refund: Alipay reports the trade's cumulative refunded amount, only once money moved.
                return VerifiedNotification(
                    kind="refund", succeeded=True, refund_final=True, out_refund_no=params["out_biz_no"],
                    gateway_refund_no=params.get("trade_no", ""),
                    refunded_total_fen=yuan_str_to_fen(params["refund_fee"]), **common,
                )  # fmt: skip
            return VerifiedNotification(
                kind="payment", succeeded=state in SUCCESS_STATES,
                amount_fen=yuan_str_to_fen(params.get("total_amount", "")), **common,
            )  # fmt: skip
        except (ValueError, ArithmeticError):
            raise refuse("amount is not a valid yuan amount", verified=True) from None

    @classmethod
    def answer(cls, *, accepted: bool, message: str = "") -> HttpResponse:
        return HttpResponse("success" if accepted else "failure", content_type="text/plain; charset=utf-8")

    # -- the gateway's view of a trade -----------------------------------------------------------------
    def query(self, *, payment) -> TradeQuery:
        from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest

        sdk_request = AlipayTradeQueryRequest()
        sdk_request.biz_content = {"out_trade_no": payment.out_trade_no}
        data = self._execute(sdk_request)
        if data.get("code") != "10000":
            if data.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return TradeQuery(state=TradeState.NOT_FOUND)
            raise ProviderError(f"alipay trade query refused: {_why(data)}")
        if data.get("out_trade_no") not in (None, payment.out_trade_no):
            raise GatewayUnavailable("alipay: the query answer is about another trade")
        raw = data.get("trade_status", "")
        try:
            amount = yuan_str_to_fen(data["total_amount"]) if data.get("total_amount") else None
        except (ValueError, ArithmeticError):
            raise GatewayUnavailable("alipay: the query answer's amount is malformed") from None
        return TradeQuery(
            state=TRADE_STATES.get(raw, TradeState.OPEN), gateway_trade_no=data.get("trade_no", ""),
            amount_fen=amount, raw_state=raw,
        )  # fmt: skip

    def close(self, *, payment) -> None:
        from alipay.aop.api.request.AlipayTradeCloseRequest import AlipayTradeCloseRequest

        sdk_request = AlipayTradeCloseRequest()
        sdk_request.biz_content = {"out_trade_no": payment.out_trade_no}
        data = self._execute(sdk_request)
        if data.get("code") == "10000" or data.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            return  # closed, or never created (page pay creates the trade when the buyer logs in)
        raise ProviderError(f"alipay trade close refused: {_why(data)}")

    # -- refunds ---------------------------------------------------------------------------------------
    def refund(self, *, refund, returns=()) -> RefundResult:
        from alipay.aop.api.request.AlipayTradeRefundRequest import AlipayTradeRefundRequest

        missing = [r for r in returns if not r.get("account")]
        if missing:
            return RefundResult(
                succeeded=False, failure=f"alipay refund: merchant {missing[0]['merchant_id']} has no royalty account"
            )
        sdk_request = AlipayTradeRefundRequest()
        biz = {
            "out_trade_no": refund.payment.out_trade_no,
            "refund_amount": fen_to_yuan_str(refund.amount_fen),
            "out_request_no": refund.out_refund_no,
            "refund_reason": refund.get_reason_display()[:80],
        }
        if returns:  # the merchants' shares already settled come back with the refund (退分账)
            biz["refund_royalty_parameters"] = [
                {"royalty_type": "transfer", "trans_out_type": "userId", "trans_out": r["account"],
                 "amount": fen_to_yuan_str(r["amount_fen"]), "desc": f"refund {refund.out_refund_no}"[:100]}
                for r in returns
            ]  # fmt: skip
        sdk_request.biz_content = biz  # the SDK turns the dict into its model object here
        try:
            data = self._execute(sdk_request)
        except GatewayUnavailable:
            return RefundResult(succeeded=False, pending=True)
        if data.get("code") == "10000":
            if data.get("fund_change") == "Y":
                return RefundResult(succeeded=True, gateway_refund_no=data.get("trade_no", ""))
            # "N": already refunded by an earlier identical request, or still moving: ask again later.
            return RefundResult(succeeded=False, pending=True, gateway_refund_no=data.get("trade_no", ""))
        return RefundResult(succeeded=False, failure=f"alipay refused the refund: {_why(data)}")

    def query_refund(self, *, refund) -> RefundResult | None:
        from alipay.aop.api.request.AlipayTradeFastpayRefundQueryRequest import (
            AlipayTradeFastpayRefundQueryRequest,
        )

        sdk_request = AlipayTradeFastpayRefundQueryRequest()
        sdk_request.biz_content = {
            "out_trade_no": refund.payment.out_trade_no,
            "out_request_no": refund.out_refund_no,
        }
        data = self._execute(sdk_request)
        if data.get("code") != "10000":
            if data.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return None
            raise ProviderError(f"alipay refund query refused: {_why(data)}")
        # Alipay: when the refund is found, an empty refund_status or REFUND_SUCCESS means it succeeded;
        # when nothing is found, it did not happen and may be sent again with the same out_request_no.
        if not data.get("refund_amount"):
            return None
        if data.get("refund_status") in ("", None, "REFUND_SUCCESS"):
            return RefundResult(succeeded=True, gateway_refund_no=data.get("trade_no", ""))
        return RefundResult(succeeded=False, pending=True)

    # -- split settlement ------------------------------------------------------------------------------
    def _bind_royalty_receivers(self, receivers: list[dict], *, out_request_no: str) -> None:
        """``alipay.trade.royalty.relation.bind``: each merchant's account becomes a royalty receiver
        of our app. Binding a bound account again succeeds, so it is done before every settle."""
        data = self._execute(_bind_request(receivers, out_request_no=out_request_no))
        if data.get("code") != "10000" or data.get("result_code", "SUCCESS") != "SUCCESS":
            raise ProviderError(f"alipay royalty relation bind refused: {_why(data)}")

    def split(self, *, payment, out_request_no: str, receivers: list[dict]) -> dict:
        """``alipay.trade.order.settle``: transfer each receiver's share of a paid trade (royalty).

        The royalty relation (``alipay.trade.royalty.relation.bind``) is bound first and the
        trade paid with ``royalty_freeze`` where funds must wait. Idempotent at Alipay by
        ``out_request_no``. Each receiver: ``account`` (Alipay user id), ``amount_fen``, ``description``.
        """
        from alipay.aop.api.request.AlipayTradeOrderSettleRequest import AlipayTradeOrderSettleRequest

        missing = [r for r in receivers if not r.get("account")]
        if missing:
            raise ProviderError(f"alipay settle: no royalty account bound for {missing[0].get('merchant_id')}")
        self._bind_royalty_receivers(receivers, out_request_no=out_request_no)
        sdk_request = AlipayTradeOrderSettleRequest()
        sdk_request.biz_content = {
            "out_request_no": out_request_no,
            "trade_no": payment.gateway_trade_no,
            "royalty_parameters": [
                {
                    "royalty_type": "transfer",
                    "trans_in_type": "userId",
                    "trans_in": receiver["account"],
                    "amount": fen_to_yuan_str(receiver["amount_fen"]),
                    "desc": str(receiver.get("description", ""))[:100],
                }
                for receiver in receivers
            ],
        }
        data = self._execute(sdk_request)  # GatewayUnavailable: unknown outcome, re-sent with the same number
        if data.get("code") != "10000":
            raise ProviderError(f"alipay settle refused: {_why(data)}")
        return {"out_request_no": out_request_no, "settle_no": data.get("settle_no", "")}


@dataclass
class TransferResult:
    """The answer to ``alipay.fund.trans.uni.transfer``: ``succeeded`` (money moved, now or by an
    earlier identical request), or ``failure`` with ``unknown`` telling whether Alipay may still have
    moved it (no answer, busy, PROCESSING): then only the same ``out_biz_no`` may be sent again."""

    succeeded: bool
    order_id: str = ""
    failure: str = ""
    unknown: bool = False


def transfer(*, out_biz_no: str, amount_fen: int, login_id: str, real_name: str, title: str) -> TransferResult:
    """Pay ``amount_fen`` to the Alipay account ``login_id`` (its holder's ``real_name`` checked by
    Alipay) — 单笔转账到支付宝账户, ``TRANS_ACCOUNT_NO_PWD`` / ``DIRECT_TRANSFER``. Idempotent at
    Alipay by ``out_biz_no``: an identical request answers with the first one's result."""
    from alipay.aop.api.request.AlipayFundTransUniTransferRequest import AlipayFundTransUniTransferRequest

    sdk_request = AlipayFundTransUniTransferRequest()
    sdk_request.biz_content = {
        "out_biz_no": out_biz_no,
        "trans_amount": fen_to_yuan_str(amount_fen),
        "product_code": "TRANS_ACCOUNT_NO_PWD",
        "biz_scene": "DIRECT_TRANSFER",
        "order_title": title[:128],
        "payee_info": {"identity": login_id, "identity_type": "ALIPAY_LOGON_ID", "name": real_name},
    }
    try:
        data = AlipayProvider()._execute(sdk_request)
    except GatewayUnavailable as exc:
        return TransferResult(succeeded=False, failure=str(exc), unknown=True)
    if data.get("code") == "10000":
        if data.get("out_biz_no") not in (None, out_biz_no):
            return TransferResult(succeeded=False, failure="alipay: the answer is about another transfer", unknown=True)
        status = data.get("status", "SUCCESS")
        if status == "SUCCESS":
            return TransferResult(succeeded=True, order_id=data.get("order_id", ""))
        if status == "FAIL":
            return TransferResult(succeeded=False, failure=f"alipay transfer failed: {_why(data)}")
        return TransferResult(succeeded=False, failure=f"alipay transfer {status}", unknown=True)  # DEALING…
    if data.get("sub_code") in TRANSFER_ALREADY_DONE:
        return TransferResult(succeeded=True, order_id=data.get("order_id", ""))
    return TransferResult(succeeded=False, failure=f"alipay refused the transfer: {_why(data)}")


# An identical out_biz_no sent again after it succeeded (a retry after a lost answer).
TRANSFER_ALREADY_DONE = {"ORDER_ALREADY_SUCCESS", "REPEATED_REQUEST_SUCCESS"}


def _bind_request(receivers: list[dict], *, out_request_no: str):
    from alipay.aop.api.request.AlipayTradeRoyaltyRelationBindRequest import AlipayTradeRoyaltyRelationBindRequest

    sdk_request = AlipayTradeRoyaltyRelationBindRequest()
    sdk_request.biz_content = {
        "out_request_no": f"B{out_request_no}",
        "receiver_list": [
            {"type": "userId", "account": r["account"], "name": r.get("name", "")[:64], "memo": "merchant settlement"}
            for r in receivers
        ],
    }
    return sdk_request


def _why(data: dict) -> str:
    parts = [data.get("code"), data.get("sub_code"), data.get("sub_msg") or data.get("msg")]
    return " ".join(str(p) for p in parts if p) or "no answer"
