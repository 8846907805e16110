"""Fake gateways for the payment tests: nothing here touches the internet.

* RSA keys generated for the run play the gateways (Alipay's key pair, WeChat Pay's platform key)
  and our merchant keys; key files are written to a temporary directory and configured through
  settings, exactly as in production.
* ``alipay_gateway`` is an HTTP server on 127.0.0.1 that speaks alipay.trade.* like Alipay: it
  checks the RSA2 signature of every request with our app's public key and signs every answer
  with "Alipay's" key, which the SDK verifies. The SDK reaches it through its own ``http.client``
  transport. ``alipay_gateway.notification(...)`` signs a notification exactly as Alipay does.
* ``wechat_platform`` intercepts ``requests`` at the transport layer (``responses``): it checks our
  ``Authorization`` signature and answers with bodies signed by the platform key. Any URL it does
  not know raises ConnectionError. ``wechat_platform.notification(...)`` encrypts the resource with
  the APIv3 key (AEAD_AES_256_GCM) and signs the message like the platform.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from catalog import codes
from catalog import services as catalog_services
from catalog.models import Sku
from orders.tests.conftest import place

ALIPAY_APP_ID = "2021000000000001"
WECHAT_MCHID = "1900000001"
WECHAT_APPID = "wx0000000000000001"
WECHAT_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000000012024050100000000000001"
WECHAT_MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
WECHAT_API = "https://api.mch.weixin.qq.com"
PRICE_FEN = 8888  # ¥88.88


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key, fmt=ser.PrivateFormat.TraditionalOpenSSL) -> bytes:
    return key.private_bytes(ser.Encoding.PEM, fmt, ser.NoEncryption())


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)


def bare(pem: bytes) -> bytes:
    """The key as the Alipay console shows it: base64 without the PEM lines."""
    return b"".join(line for line in pem.splitlines() if b"-----" not in line)


def rsa2_sign(key, text: str) -> str:
    return base64.b64encode(key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa2_valid(public_key, text: str, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature), text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        return True
    except Exception:
        return False


@dataclass
class KeyRing:
    alipay_app: rsa.RSAPrivateKey  # ours
    alipay_gateway: rsa.RSAPrivateKey  # "Alipay"
    wechat_merchant: rsa.RSAPrivateKey  # ours
    wechat_platform: rsa.RSAPrivateKey  # "WeChat Pay"
    impostor: rsa.RSAPrivateKey  # anybody else


@pytest.fixture(scope="session")
def keyring() -> KeyRing:
    return KeyRing(new_key(), new_key(), new_key(), new_key(), new_key())


# -- orders to pay -------------------------------------------------------------------------------------------


@pytest.fixture
def stocked_sku(demo_shop):
    product = demo_shop.products["steam-wallet"]
    sku = Sku.objects.create(product=product, label="支付测试", price_fen=PRICE_FEN, low_stock_threshold=0)
    catalog_services.add_codes(sku=sku, secrets=[codes.Secret(f"PAY-{i:03d}") for i in range(6)])
    return sku


def unpaid_order(sku, *, buyer=None, quantity: int = 1):
    """A placed, unpaid order of ``sku`` (the Order; orders.tests.conftest.place gives the PlacedOrder)."""
    return place(sku, quantity, buyer=buyer, email=buyer.email if buyer else None).order


# -- Alipay ------------------------------------------------------------------------------------------------


@dataclass
class FakeAlipay:
    """The state of "Alipay": trades and refunds by our numbers, and every call received."""

    key: rsa.RSAPrivateKey
    app_public_key: rsa.RSAPublicKey
    trades: dict = field(default_factory=dict)
    refunds: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)
    busy: set = field(default_factory=set)  # methods answered with "system busy" (outcome unknown)
    royalty_receivers: dict = field(default_factory=dict)  # accounts bound by alipay.trade.royalty.relation.bind
    url: str = ""

    def methods(self) -> list[str]:
        return [method for method, _biz in self.calls]

    def pay(self, out_trade_no: str, *, total_amount: str = "88.88", status: str = "TRADE_SUCCESS") -> str:
        """The buyer pays (or the trade reaches ``status``) at the gateway."""
        trade = self.trades.setdefault(out_trade_no, {"total_amount": total_amount})
        trade.update(status=status, trade_no=trade.get("trade_no") or f"2024{secrets.randbelow(10**20):020d}")
        return trade["trade_no"]

    def answer(self, method: str, biz: dict) -> dict:
        self.calls.append((method, biz))
        if method in self.busy:
            return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.SYSTEM_ERROR", "sub_msg": "系统繁忙"}
        no = biz.get("out_trade_no")
        trade = self.trades.get(no)
        missing = {
            "code": "40004",
            "msg": "Business Failed",
            "sub_code": "ACQ.TRADE_NOT_EXIST",
            "sub_msg": "交易不存在",
        }
        ok = {"code": "10000", "msg": "Success"}
        if method == "alipay.trade.precreate":
            self.trades[no] = {"status": "WAIT_BUYER_PAY", "total_amount": biz["total_amount"], "trade_no": ""}
            return {**ok, "out_trade_no": no, "qr_code": f"https://qr.alipay.com/bax0{secrets.token_hex(8)}"}
        if method == "alipay.trade.royalty.relation.bind":
            for receiver in biz.get("receiver_list", []):
                self.royalty_receivers[receiver["account"]] = receiver
            return {**ok, "result_code": "SUCCESS"}
        if method == "alipay.trade.order.settle":  # by trade_no; royalty to bound receivers
            unbound = [
                r["trans_in"] for r in biz.get("royalty_parameters", []) if r["trans_in"] not in self.royalty_receivers
            ]
            if unbound:
                return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.ROYALTY_RECEIVER_NOT_BIND"}
            known = any(t["trade_no"] == biz.get("trade_no") for t in self.trades.values())
            return (
                {**ok, "trade_no": biz.get("trade_no"), "settle_no": f"2024SETTLE{len(self.calls):06d}"}
                if known
                else missing
            )
        if trade is None:
            return missing
        if method == "alipay.trade.query":
            return {**ok, "out_trade_no": no, "trade_no": trade["trade_no"], "trade_status": trade["status"],
                    "total_amount": trade["total_amount"]}  # fmt: skip
        if method == "alipay.trade.close":
            if trade["status"] != "WAIT_BUYER_PAY":
                return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_STATUS_ERROR"}
            trade["status"] = "TRADE_CLOSED"
            return {**ok, "out_trade_no": no}
        if method == "alipay.trade.refund":
            if trade["status"] not in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_STATUS_ERROR"}
            key = (no, biz["out_request_no"])
            fresh = key not in self.refunds
            self.refunds.setdefault(key, biz["refund_amount"])
            return {**ok, "out_trade_no": no, "trade_no": trade["trade_no"], "refund_fee": biz["refund_amount"],
                    "fund_change": "Y" if fresh else "N"}  # fmt: skip
        if method == "alipay.trade.fastpay.refund.query":
            amount = self.refunds.get((no, biz["out_request_no"]))
            if amount is None:
                return {**ok, "out_trade_no": no}
            return {
                **ok, "out_trade_no": no, "trade_no": trade["trade_no"], "out_request_no": biz["out_request_no"],
                "refund_amount": amount, "total_amount": trade["total_amount"], "refund_status": "REFUND_SUCCESS",
            }  # fmt: skip
        return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.INVALID_METHOD"}

    def notification(self, *, out_trade_no: str, total_amount: str = "88.88", trade_status: str = "TRADE_SUCCESS",
                     app_id: str = ALIPAY_APP_ID, key=None, sign_type: str = "RSA2", sign_empty: bool = False,
                     **extra) -> dict:  # fmt: skip
        """An asynchronous notification as Alipay posts it, signed by ``key`` (Alipay's by default)."""
        params = {
            "notify_time": datetime.now().strftime("%Y-%m-%d %H:%M:%S"), "notify_type": "trade_status_sync",
            "notify_id": uuid.uuid4().hex, "app_id": app_id, "charset": "utf-8", "version": "1.0",
            "trade_no": self.trades.get(out_trade_no, {}).get("trade_no") or "2024050122001400000000000001",
            "out_trade_no": out_trade_no, "trade_status": trade_status, "total_amount": total_amount,
            "receipt_amount": total_amount, "buyer_pay_amount": total_amount, "subject": "虚拟商品 & 点卡",
            "gmt_create": "2024-05-01 11:59:50", "gmt_payment": "2024-05-01 12:00:04",
            "seller_id": "2088000000000001", "buyer_open_id": "074a1CcTG1LelxKe4xQC0zgNdId0",
            "fund_bill_list": '[{"amount":"88.88","fundChannel":"ALIPAYACCOUNT"}]', "passback_params": "",
            **extra,
        }  # fmt: skip
        content = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if v != "" or sign_empty)
        signer = key or self.key
        if sign_type == "RSA":  # SHA1withRSA, which the SDK would also accept
            signature = base64.b64encode(signer.sign(content.encode(), padding.PKCS1v15(), hashes.SHA1())).decode()  # noqa: S303
        else:
            signature = rsa2_sign(signer, content)
        return {**params, "sign_type": sign_type, "sign": signature}


class _AlipayHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        fake: FakeAlipay = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        params.update(urllib.parse.parse_qsl(body))
        signature = params.pop("sign", "")
        content = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        method = params.get("method", "")
        if params.get("sign_type") != "RSA2" or not rsa2_valid(fake.app_public_key, content, signature):
            name, inner = (
                "error_response",
                {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"},
            )
        else:
            name, inner = method.replace(".", "_") + "_response", fake.answer(method, json.loads(params["biz_content"]))
        inner_text = json.dumps(inner, ensure_ascii=False, separators=(",", ":"))
        out = f'{{"{name}":{inner_text},"sign":"{rsa2_sign(fake.key, inner_text)}"}}'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html;charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def configure_alipay(settings, tmp_path, keyring, *, private=None, public=None) -> None:
    private_file, public_file = tmp_path / "alipay_app_private.pem", tmp_path / "alipay_public.txt"
    private_file.write_bytes(private if private is not None else private_pem(keyring.alipay_app))
    public_file.write_bytes(public if public is not None else bare(public_pem(keyring.alipay_gateway)))
    settings.ALIPAY_APP_ID = ALIPAY_APP_ID
    settings.ALIPAY_APP_PRIVATE_KEY_PATH = str(private_file)
    settings.ALIPAY_PUBLIC_KEY_PATH = str(public_file)
    settings.PAYMENT_NOTIFY_BASE_URL = "https://shop.example"


@pytest.fixture
def alipay_gateway(settings, tmp_path, keyring):
    configure_alipay(settings, tmp_path, keyring)
    fake = FakeAlipay(key=keyring.alipay_gateway, app_public_key=keyring.alipay_app.public_key())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AlipayHandler)
    server.fake = fake
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = settings.ALIPAY_GATEWAY_URL = f"http://127.0.0.1:{server.server_port}/gateway.do"
    yield fake
    server.shutdown()
    server.server_close()


def alipay_post(client, params: dict):
    """POST a notification the way Alipay does: an url-encoded form."""
    return client.post(
        "/payments/alipay/notify/", data=urllib.parse.urlencode(params),
        content_type="application/x-www-form-urlencoded;charset=utf-8",
    )  # fmt: skip


# -- WeChat Pay --------------------------------------------------------------------------------------------


@dataclass
class FakeWeChat:
    platform_key: rsa.RSAPrivateKey
    merchant_public_key: rsa.RSAPublicKey
    apiv3_key: str
    serial: str
    trades: dict = field(default_factory=dict)
    refunds: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)
    refund_status: str = "PROCESSING"  # what a new refund answers
    receivers: dict = field(default_factory=dict)  # profit-sharing receivers added, by account
    splits: dict = field(default_factory=dict)  # profit-sharing orders, by out_order_no
    returns: dict = field(default_factory=dict)  # profit-sharing returns, by out_return_no

    def headers(self, body: str, *, serial: str | None = None, timestamp: int | None = None, key=None) -> dict:
        stamp, nonce = str(int(time.time()) if timestamp is None else timestamp), uuid.uuid4().hex.upper()
        signature = (key or self.platform_key).sign(
            f"{stamp}\n{nonce}\n{body}\n".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return {
            "Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial or self.serial,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }  # fmt: skip

    def pay(self, out_trade_no: str, *, total: int = PRICE_FEN, state: str = "SUCCESS") -> dict:
        trade = self.trades.setdefault(out_trade_no, {"total": total})
        trade.update(state=state, transaction_id=trade.get("transaction_id") or f"42{secrets.randbelow(10**26):026d}")
        return self.transaction(out_trade_no)

    def transaction(self, out_trade_no: str, **changes) -> dict:
        trade = self.trades.get(out_trade_no, {"total": PRICE_FEN, "state": "SUCCESS", "transaction_id": "4200001"})
        resource = {
            "mchid": WECHAT_MCHID, "appid": WECHAT_APPID, "out_trade_no": out_trade_no,
            "transaction_id": trade.get("transaction_id", ""), "trade_type": "NATIVE", "trade_state": trade["state"],
            "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "",
            "success_time": "2024-05-01T12:00:04+08:00", "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {
                "total": trade["total"], "payer_total": trade["total"], "currency": "CNY", "payer_currency": "CNY",
            },
        }  # fmt: skip
        resource.update(changes)
        return resource

    def notification(self, resource: dict, *, event_type: str = "TRANSACTION.SUCCESS", apiv3_key: str | None = None,
                     **header_options) -> tuple[dict, str]:  # fmt: skip
        """(headers, body) of a callback as the platform sends it."""
        original_type = "refund" if event_type.startswith("REFUND") else "transaction"
        nonce = secrets.token_hex(6)
        cipher = AESGCM((apiv3_key or self.apiv3_key).encode()).encrypt(
            nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(), original_type.encode()
        )
        body = json.dumps(
            {
                "id": str(uuid.uuid4()), "create_time": datetime.now(UTC).isoformat(),
                "resource_type": "encrypt-resource", "event_type": event_type, "summary": "支付成功",
                "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
                             "ciphertext": base64.b64encode(cipher).decode(), "associated_data": original_type,
                             "nonce": nonce},
            },
            ensure_ascii=False,
        )  # fmt: skip
        return self.headers(body, **header_options), body

    # -- the API, behind `responses` --------------------------------------------------------------------
    def _reply(self, status: int, payload: dict | None):
        body = json.dumps(payload, ensure_ascii=False) if payload is not None else ""
        return status, {"Content-Type": "application/json", **self.headers(body)}, body

    def handle(self, request):
        auth = request.headers.get("Authorization", "")
        fields = dict(part.split("=", 1) for part in auth.split(" ", 1)[1].split(",")) if " " in auth else {}
        fields = {k: v.strip('"') for k, v in fields.items()}
        raw = request.body or b""
        body = raw.decode() if isinstance(raw, bytes) else raw
        message = (
            f"{request.method}\n{request.path_url}\n{fields.get('timestamp')}\n{fields.get('nonce_str')}\n{body}\n"
        )
        if (
            not rsa2_valid(self.merchant_public_key, message, fields.get("signature", ""))
            or fields.get("mchid") != WECHAT_MCHID
        ):
            return self._reply(401, {"code": "SIGN_ERROR", "message": "签名错误"})
        path = request.path_url.split("?", 1)[0]
        data = json.loads(body) if body else {}
        self.calls.append((request.method, path, data))
        if path == "/v3/pay/transactions/native":
            self.trades[data["out_trade_no"]] = {
                "total": data["amount"]["total"],
                "state": "NOTPAY",
                "transaction_id": "",
            }
            return self._reply(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(6)}"})
        if match := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", path):
            if match[1] not in self.trades:
                return self._reply(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
            return self._reply(200, self.transaction(match[1]))
        if match := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)/close", path):
            trade = self.trades.get(match[1])
            if trade and trade["state"] == "SUCCESS":
                return self._reply(400, {"code": "ORDER_PAID", "message": "订单已支付"})
            if trade:
                trade["state"] = "CLOSED"
            return self._reply(204, None)
        if path == "/v3/refund/domestic/refunds":
            refund = self.refunds.setdefault(
                data["out_refund_no"],
                {"refund_id": f"50{secrets.randbelow(10**26):026d}", "status": self.refund_status, "data": data},
            )
            return self._reply(200, self._refund_body(data["out_refund_no"], refund))
        if match := re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", path):
            refund = self.refunds.get(match[1])
            if refund is None:
                return self._reply(404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"})
            return self._reply(200, self._refund_body(match[1], refund))
        if path == "/v3/profitsharing/receivers/add":
            self.receivers[data["account"]] = {**data, "name": self.decrypt(data.get("name", ""))}
            return self._reply(200, {"type": data["type"], "account": data["account"]})
        if path == "/v3/profitsharing/orders":
            trade = next((t for t in self.trades.values() if t.get("transaction_id") == data["transaction_id"]), None)
            if trade is None:
                return self._reply(400, {"code": "INVALID_REQUEST", "message": "订单不存在"})
            unknown = [r["account"] for r in data["receivers"] if r["account"] not in self.receivers]
            if unknown:
                return self._reply(400, {"code": "RECEIVER_INVALID", "message": f"分账接收方未添加 {unknown}"})
            split = self.splits.setdefault(
                data["out_order_no"], {"order_id": f"30{secrets.randbelow(10**26):026d}", "data": data}
            )
            return self._reply(200, {
                "transaction_id": data["transaction_id"], "out_order_no": data["out_order_no"],
                "order_id": split["order_id"], "state": "PROCESSING",
                "receivers": [{**r, "result": "PENDING"} for r in split["data"]["receivers"]],
            })  # fmt: skip
        if path == "/v3/profitsharing/return-orders":
            split = self.splits.get(data.get("out_order_no", ""))
            if split is None:
                return self._reply(400, {"code": "INVALID_REQUEST", "message": "分账单不存在"})
            back = self.returns.setdefault(data["out_return_no"], data)
            answer = {
                key: back[key] for key in ("out_order_no", "out_return_no", "return_mchid", "amount", "description")
            }
            return self._reply(
                200,
                {
                    **answer,
                    "order_id": split["order_id"],
                    "return_id": f"RT{len(self.returns):08d}",
                    "result": "SUCCESS",
                },
            )
        if match := re.fullmatch(r"/v3/profitsharing/orders/([^/]+)", path):
            split = self.splits.get(match[1])
            if split is None:
                return self._reply(404, {"code": "RESOURCE_NOT_EXISTS", "message": "记录不存在"})
            return self._reply(200, {
                "transaction_id": split["data"]["transaction_id"], "out_order_no": match[1],
                "order_id": split["order_id"], "state": split.get("state", "PROCESSING"),
                "receivers": [{**r, "result": split.get("result", "PENDING")} for r in split["data"]["receivers"]],
            })  # fmt: skip
        return self._reply(404, {"code": "NOT_FOUND", "message": path})

    def decrypt(self, ciphertext: str) -> str:
        """A field the SDK encrypted with the platform's public key (RSA-OAEP), read back."""
        if not ciphertext:
            return ""
        plain = self.platform_key.decrypt(
            base64.b64decode(ciphertext),
            padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),  # noqa: S303 - WeChat Pay uses RSA-OAEP with SHA-1
        )
        return plain.decode()

    @staticmethod
    def _refund_body(out_refund_no: str, refund: dict) -> dict:
        data = refund["data"]
        return {
            "refund_id": refund["refund_id"], "out_refund_no": out_refund_no, "out_trade_no": data.get("out_trade_no"),
            "status": refund["status"], "amount": {**data["amount"], "payer_refund": data["amount"]["refund"]},
        }  # fmt: skip


def configure_wechat(settings, tmp_path, keyring, *, apiv3_key: str, platform: bytes | None = None,
                     public_key_id: str = WECHAT_PUBLIC_KEY_ID) -> None:  # fmt: skip
    private_file, platform_file = tmp_path / "apiclient_key.pem", tmp_path / "wechatpay_platform.pem"
    private_file.write_bytes(private_pem(keyring.wechat_merchant, ser.PrivateFormat.PKCS8))
    platform_file.write_bytes(platform if platform is not None else public_pem(keyring.wechat_platform))
    settings.WECHATPAY_MCHID = WECHAT_MCHID
    settings.WECHATPAY_APPID = WECHAT_APPID
    settings.WECHATPAY_PRIVATE_KEY_PATH = str(private_file)
    settings.WECHATPAY_CERT_SERIAL_NO = WECHAT_MERCHANT_SERIAL
    settings.WECHATPAY_APIV3_KEY = apiv3_key
    settings.WECHATPAY_PUBLIC_KEY_PATH = str(platform_file)
    settings.WECHATPAY_PUBLIC_KEY_ID = public_key_id
    settings.PAYMENT_NOTIFY_BASE_URL = "https://shop.example"


def platform_certificate(key) -> tuple[bytes, str]:
    """A self-signed certificate for the platform key (certificate mode) and its serial in hex."""
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (fake)")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365)).sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(ser.Encoding.PEM), format(cert.serial_number, "X")


@pytest.fixture
def wechat_mode():
    """Public-key mode unless a test parametrizes it with "certificate"."""
    return "public_key"


@pytest.fixture
def wechat_platform(settings, tmp_path, keyring, wechat_mode):
    apiv3_key = secrets.token_hex(16)
    if wechat_mode == "certificate":
        certificate, serial = platform_certificate(keyring.wechat_platform)
        configure_wechat(settings, tmp_path, keyring, apiv3_key=apiv3_key, platform=certificate, public_key_id="")
    else:
        serial = WECHAT_PUBLIC_KEY_ID
        configure_wechat(settings, tmp_path, keyring, apiv3_key=apiv3_key)
    fake = FakeWeChat(
        platform_key=keyring.wechat_platform, merchant_public_key=keyring.wechat_merchant.public_key(),
        apiv3_key=apiv3_key, serial=serial,
    )  # fmt: skip
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in (responses.GET, responses.POST):
            mock.add_callback(
                method, re.compile(re.escape(WECHAT_API) + r"/v3/(pay|refund|profitsharing)/.*"), callback=fake.handle
            )
        fake.mock = mock
        yield fake


def wechat_post(client, headers: dict, body: str):
    return client.post("/payments/wechat/notify/", data=body, content_type="application/json", headers=headers)
