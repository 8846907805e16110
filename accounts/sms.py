"""Text messages: one small interface, :func:`send`, and a backend chosen by ``SMS_BACKEND``.

``send(phone, template, params)`` sends one of the shop's message templates to an E.164 number:

==================  ===========================  ==================================================
template            params                       used by
==================  ===========================  ==================================================
``verification``    ``code``                     allauth's phone sign-in and verification codes
``delivery``        ``order``, ``url``           the delivery notice (orders/sms.py)
``delivery_codes``  ``order``, ``url``, ``codes``  the same with the card codes, when the SKU allows it
``coupon``          ``coupon``, ``url``          a coupon granted to the user (marketing's win-back), optional
==================  ===========================  ==================================================

Backends:

* ``aliyun`` (production): Aliyun SMS (阿里云短信) through its SDK, ``alibabacloud-dysmsapi20170525``
  — ``SendSms`` with the sign name, the operator's template code for the template and the params as
  ``TemplateParam`` JSON. The SDK signs each request with the AccessKey (ACS3-HMAC-SHA256).
* ``console`` (the embedded run; refused when DEBUG is off): every message is kept as one JSON file
  in ``SMS_OUTBOX_DIR`` (``var/sms/``), like e-mail in ``var/outbox/``, and one line is logged naming
  the file. Only a ``verification`` message also logs its code: a developer signing in with a
  phone needs it at once, it is short-lived and useless once used, and it signs into the
  developer's own demo account. Delivery messages are never printed: they may carry card codes.

Nothing here logs params (codes) or full numbers; a gateway refusal raises :class:`SmsError` with
the gateway's code only.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string

from accounts.phones import masked

logger = logging.getLogger(__name__)

TEMPLATES = {
    "verification": ("code",),
    "delivery": ("order", "url"),
    "delivery_codes": ("order", "url", "codes"),
    "coupon": ("coupon", "url"),
}


class SmsError(Exception):
    """The message was not accepted (gateway refusal, misconfiguration, network)."""


def send(phone: str, template: str, params: dict[str, str]) -> None:
    """Send ``template`` with ``params`` to ``phone`` (E.164)."""
    expected = TEMPLATES.get(template)
    if expected is None:
        raise ValueError(f"unknown SMS template {template!r}")
    if set(params) != set(expected):
        raise ValueError(f"SMS template {template!r} takes {', '.join(expected)}")
    backend().send(phone=str(phone), template=template, params={k: str(v) for k, v in params.items()})


def can_send(template: str) -> bool:
    """Whether the configured backend has this template (the codes template is optional)."""
    return backend().has_template(template)


def backend():
    name = settings.SMS_BACKEND
    path = BACKENDS.get(name, name)
    return import_string(path)()


class ConsoleBackend:
    """The embedded run's SMS outbox: files, never message bodies on the console (see module doc)."""

    def has_template(self, template: str) -> bool:
        return template in TEMPLATES

    def send(self, *, phone: str, template: str, params: dict[str, str]) -> None:
        directory = Path(settings.SMS_OUTBOX_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        name = f"{now:%Y%m%d-%H%M%S-%f}-{uuid.uuid4().hex[:8]}.json"
        record = {"to": phone, "template": template, "params": params, "sent_at": now.isoformat()}
        temporary = directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, ensure_ascii=False)
        os.replace(temporary, directory / name)  # readers never see half a message
        if template == "verification":
            logger.info("SMS to %s: verification code %s (kept in %s)", masked(phone), params["code"], name)
        else:
            logger.info("SMS to %s: %s message kept in %s", masked(phone), template, name)


def outbox(phone: str | None = None) -> list[dict]:
    """The console backend's messages, oldest first (to ``phone`` only, when given)."""
    directory = Path(settings.SMS_OUTBOX_DIR)
    if not directory.is_dir():
        return []
    messages = []
    for path in sorted(directory.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if phone is None or record["to"] == str(phone):
            messages.append(record)
    return messages


class AliyunBackend:
    """Aliyun SMS ``SendSms`` through the official SDK (the SDK signs and sends; see module doc)."""

    def has_template(self, template: str) -> bool:
        return bool(settings.ALIYUN_SMS_TEMPLATES.get(template))

    @staticmethod
    def recipient(phone: str) -> str:
        """Aliyun wants mainland numbers bare (``13800138000``) and others with their country code
        but no ``+`` (``85251234567``)."""
        return phone[3:] if phone.startswith("+86") else phone.lstrip("+")

    def client(self):
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        return Client(
            Config(
                access_key_id=settings.ALIYUN_SMS_ACCESS_KEY_ID,
                access_key_secret=settings.ALIYUN_SMS_ACCESS_KEY_SECRET,
                endpoint=settings.ALIYUN_SMS_ENDPOINT,
            )
        )

    def send(self, *, phone: str, template: str, params: dict[str, str]) -> None:
        from alibabacloud_dysmsapi20170525.models import SendSmsRequest
        from darabonba.runtime import RuntimeOptions

        template_code = settings.ALIYUN_SMS_TEMPLATES.get(template)
        if not template_code:
            raise SmsError(f"no Aliyun template configured for {template!r}")
        request = SendSmsRequest(
            phone_numbers=self.recipient(phone),
            sign_name=settings.ALIYUN_SMS_SIGN_NAME,
            template_code=template_code,
            template_param=json.dumps(params, ensure_ascii=False, separators=(",", ":")),
        )
        # No SDK retries: a retried SendSms may text the buyer twice; callers decide.
        runtime = RuntimeOptions(autoretry=False, connect_timeout=5000, read_timeout=10000)
        try:
            response = self.client().send_sms_with_options(request, runtime)
        except Exception as exc:  # the SDK's error text carries the request (and params): only its code
            code = getattr(exc, "code", None) or type(exc).__name__
            raise SmsError(f"Aliyun SMS request failed: {code}") from None
        body = response.body
        if body is None or body.code != "OK":
            code = getattr(body, "code", None) or f"HTTP {response.status_code}"
            raise SmsError(f"Aliyun SMS refused the message: {code}")
        logger.info("SMS %s to %s accepted by Aliyun (biz id %s)", template, masked(phone), body.biz_id)


BACKENDS = {"console": "accounts.sms.ConsoleBackend", "aliyun": "accounts.sms.AliyunBackend"}
