"""System checks of the payment providers' configuration (``manage.py check``, run at start-up).

A provider whose settings are all absent is simply not offered and not checked. One that is set up
partly, or whose key files cannot be read or are in the wrong format, is reported here with the
setting's name — instead of a cryptic error from an SDK on the first payment.

IDs: E001 partly configured, E002 unreadable key file, E003 wrong key format, E004 malformed value;
W001 key stored in a format that is converted on load, W002 process clock not on Beijing time,
W003 notification URL without https.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

from payments.providers import alipay, wechat
from payments.providers.base import KeyFileUnreadable, KeyFormatError


def _key_problem(exc: KeyFormatError, *, obj: str) -> Error:
    if isinstance(exc, KeyFileUnreadable):
        return Error(str(exc), hint="Check the path and that the web and worker users can read it.", obj=obj,
                     id="payments.E002")  # fmt: skip
    return Error(str(exc), obj=obj, id="payments.E003")


def _partly(label: str, names: tuple[str, ...], obj: str) -> list:
    given = [name for name in names if getattr(settings, name, "")]
    if not given or len(given) == len(names):
        return []
    missing = [name for name in names if name not in given]
    return [
        Error(
            f"{label} is configured only partly: {', '.join(missing)} not set, so it is not offered.",
            hint=f"Set all of {', '.join(names)}, or none of them.",
            obj=obj,
            id="payments.E001",
        )
    ]


def _check_alipay() -> list:
    problems = _partly("Alipay", alipay.SETTINGS, "ALIPAY")
    if problems or not alipay.AlipayProvider.is_configured():
        return problems
    try:
        _private, _public, remarks = alipay.load_keys(
            private_path=settings.ALIPAY_APP_PRIVATE_KEY_PATH, public_path=settings.ALIPAY_PUBLIC_KEY_PATH
        )
    except KeyFormatError as exc:
        return [_key_problem(exc, obj="ALIPAY")]
    problems += [Warning(remark, obj="ALIPAY", id="payments.W001") for remark in remarks]
    gateway = urlsplit(settings.ALIPAY_GATEWAY_URL)
    if gateway.scheme not in ("http", "https") or not gateway.hostname:
        problems.append(Error(f"ALIPAY_GATEWAY_URL {settings.ALIPAY_GATEWAY_URL!r} is not a URL", obj="ALIPAY",
                              id="payments.E004"))  # fmt: skip
    offset = datetime.now().astimezone().utcoffset()
    if offset != timedelta(hours=8):
        problems.append(
            Warning(
                "The process does not run on Beijing time: alipay-sdk-python stamps requests with the local "
                "time, and Alipay refuses stamps that are off.",
                hint="Keep TIME_ZONE = 'Asia/Shanghai' and start processes through Django (it sets TZ).",
                obj="ALIPAY",
                id="payments.W002",
            )
        )
    return problems


def _check_wechat() -> list:
    problems = _partly("WeChat Pay", wechat.SETTINGS, "WECHATPAY")
    if problems or not wechat.WeChatPayProvider.is_configured():
        return problems
    apiv3 = wechat.check_apiv3_key(settings.WECHATPAY_APIV3_KEY)
    if apiv3:
        problems.append(Error(apiv3, obj="WECHATPAY", id="payments.E004"))
    if not re.fullmatch(r"[0-9A-Fa-f]{8,64}", settings.WECHATPAY_CERT_SERIAL_NO):
        problems.append(
            Error(
                "WECHATPAY_CERT_SERIAL_NO must be the hexadecimal serial of the merchant API certificate",
                obj="WECHATPAY",
                id="payments.E004",
            )
        )
    try:
        keys = wechat.load_keys(
            private_path=settings.WECHATPAY_PRIVATE_KEY_PATH, platform_path=settings.WECHATPAY_PUBLIC_KEY_PATH,
            public_key_id=settings.WECHATPAY_PUBLIC_KEY_ID,
        )  # fmt: skip
    except KeyFormatError as exc:
        return [*problems, _key_problem(exc, obj="WECHATPAY")]
    problems += [Warning(remark, obj="WECHATPAY", id="payments.W001") for remark in keys.remarks]
    return problems


def _check_notify_url() -> list:
    real = alipay.AlipayProvider.is_configured() or wechat.WeChatPayProvider.is_configured()
    if real and urlsplit(settings.PAYMENT_NOTIFY_BASE_URL).scheme != "https":
        return [
            Warning(
                f"PAYMENT_NOTIFY_BASE_URL {settings.PAYMENT_NOTIFY_BASE_URL!r} is not https: WeChat Pay refuses "
                "such notify URLs and Alipay's notifications would travel in clear text.",
                obj="PAYMENT_NOTIFY_BASE_URL",
                id="payments.W003",
            )
        ]
    return []


@register("payments")
def check_payment_providers(app_configs=None, **kwargs) -> list:
    return _check_alipay() + _check_wechat() + _check_notify_url()
