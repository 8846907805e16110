"""A fake Aliyun SMS gateway at the HTTP transport layer (``responses`` under the SDK's ``requests``).

It checks each request as Aliyun does before answering: the V3 signature (ACS3-HMAC-SHA256, the
SDK's default) recomputed from the canonical request with the test AccessKey secret, the action and
version headers, and the SendSms parameters; it answers like Aliyun (``{"Code": "OK", …}``) or with
a refusal the test chooses. Nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.parse
import uuid
from dataclasses import dataclass, field

import pytest
import responses

ACCESS_KEY_ID = "LTAI5tTestAccessKeyId000"
ACCESS_KEY_SECRET = "test-access-key-secret-0123456789abcd"
SIGN_NAME = "卡盟"
TEMPLATES = {"verification": "SMS_100000001", "delivery": "SMS_100000002", "delivery_codes": "SMS_100000003"}
ENDPOINT = "dysmsapi.aliyuncs.com"


def _encode(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def acs3_signature(*, method: str, path: str, query: dict[str, str], headers: dict[str, str], signed: list[str],
                   payload_hash: str, secret: str) -> str:  # fmt: skip
    """Aliyun's V3 request signature, written from its documentation (not the SDK's code)."""
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    canonical = "\n".join([method, path, canonical_query, canonical_headers, ";".join(signed), payload_hash])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class FakeAliyunSms:
    secret: str = ACCESS_KEY_SECRET
    sent: list[dict] = field(default_factory=list)  # the verified SendSms parameters, in order
    refuse_with: str | None = None  # e.g. "isv.BUSINESS_LIMIT_CONTROL"

    def handle(self, request):
        url = urllib.parse.urlsplit(request.url)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        auth = re.fullmatch(
            r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})",
            headers.get("authorization", ""),
        )
        if auth is None or auth.group(1) != ACCESS_KEY_ID:
            return self._reply(400, {"Code": "InvalidAccessKeyId.NotFound"})
        signed = auth.group(2).split(";")
        if "host" not in signed or "x-acs-action" not in signed or signed != sorted(signed):
            return self._reply(400, {"Code": "IncompleteSignature"})
        payload_hash = hashlib.sha256(body).hexdigest()
        if headers.get("x-acs-content-sha256") != payload_hash:
            return self._reply(400, {"Code": "InvalidContentSha256"})
        expected = acs3_signature(
            method=request.method, path=url.path or "/", query=query, headers=headers, signed=signed,
            payload_hash=payload_hash, secret=self.secret,
        )  # fmt: skip
        if not hmac.compare_digest(expected, auth.group(3)):
            return self._reply(400, {"Code": "SignatureDoesNotMatch"})
        if headers.get("x-acs-action") != "SendSms" or headers.get("x-acs-version") != "2017-05-25":
            return self._reply(400, {"Code": "InvalidAction.NotFound"})
        self.sent.append({**query, "Action": headers["x-acs-action"], "Host": headers["host"]})
        if self.refuse_with:
            return self._reply(200, {"Code": self.refuse_with, "Message": "refused", "RequestId": str(uuid.uuid4())})
        return self._reply(
            200, {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": str(uuid.uuid4())}
        )

    @staticmethod
    def _reply(status: int, payload: dict):
        return status, {"Content-Type": "application/json;charset=utf-8"}, json.dumps(payload)

    def params(self, index: int = -1) -> dict:
        return json.loads(self.sent[index]["TemplateParam"])


def configure_aliyun(settings, *, secret: str = ACCESS_KEY_SECRET) -> None:
    settings.SMS_BACKEND = "aliyun"
    settings.ALIYUN_SMS_ACCESS_KEY_ID = ACCESS_KEY_ID
    settings.ALIYUN_SMS_ACCESS_KEY_SECRET = secret
    settings.ALIYUN_SMS_SIGN_NAME = SIGN_NAME
    settings.ALIYUN_SMS_ENDPOINT = ENDPOINT
    settings.ALIYUN_SMS_TEMPLATES = dict(TEMPLATES)


@pytest.fixture
def aliyun_sms(settings):
    configure_aliyun(settings)
    fake = FakeAliyunSms()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, re.compile(rf"https://{re.escape(ENDPOINT)}/.*"), callback=fake.handle)
        yield fake
