"""accounts/sms.py: the Aliyun backend checked at the HTTP transport (the fake gateway verifies the
SDK's signature with the test AccessKey secret), and the console backend of the embedded run."""

from __future__ import annotations

import logging

import pytest

from accounts import sms
from accounts.tests.conftest import ACCESS_KEY_ID, SIGN_NAME, TEMPLATES, configure_aliyun


def test_aliyun_send_sms_is_a_signed_send_sms_request(aliyun_sms):
    sms.send("+8613800138000", "verification", {"code": "482913"})
    sms.send("+85251234567", "delivery", {"order": "K20261202ABC", "url": "https://shop.example.com/orders/K1/"})
    first, second = aliyun_sms.sent
    # The fake gateway recomputed the ACS3-HMAC-SHA256 signature with the test secret before recording.
    assert first["Action"] == "SendSms" and first["Host"] == "dysmsapi.aliyuncs.com"
    assert first["PhoneNumbers"] == "13800138000"  # mainland numbers go bare
    assert first["SignName"] == SIGN_NAME
    assert first["TemplateCode"] == TEMPLATES["verification"]
    assert aliyun_sms.params(0) == {"code": "482913"}
    assert second["PhoneNumbers"] == "85251234567"  # others with their country code, no "+"
    assert second["TemplateCode"] == TEMPLATES["delivery"]
    assert aliyun_sms.params(1) == {"order": "K20261202ABC", "url": "https://shop.example.com/orders/K1/"}


def test_a_request_signed_with_another_secret_is_refused_and_raises(aliyun_sms, settings):
    configure_aliyun(settings, secret="not-the-secret-the-gateway-has-000000")
    with pytest.raises(sms.SmsError, match="SignatureDoesNotMatch"):
        sms.send("+8613800138000", "verification", {"code": "482913"})
    assert aliyun_sms.sent == []


def test_a_gateway_refusal_raises_without_the_message_in_the_error_or_the_log(aliyun_sms, caplog):
    aliyun_sms.refuse_with = "isv.BUSINESS_LIMIT_CONTROL"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(sms.SmsError) as raised:
        params = {"order": "K1", "url": "https://s/o/K1/", "codes": "SECRET-CODE-1"}
        sms.send("+8613800138000", "delivery_codes", params)
    assert "isv.BUSINESS_LIMIT_CONTROL" in str(raised.value)
    assert "SECRET-CODE-1" not in str(raised.value) and "SECRET-CODE-1" not in caplog.text
    assert "13800138000" not in caplog.text


def test_an_unconfigured_template_is_not_sent(aliyun_sms, settings):
    settings.ALIYUN_SMS_TEMPLATES = {**TEMPLATES, "delivery_codes": ""}
    assert sms.can_send("delivery") and not sms.can_send("delivery_codes")
    with pytest.raises(sms.SmsError):
        sms.send("+8613800138000", "delivery_codes", {"order": "K1", "url": "u", "codes": "C"})
    assert aliyun_sms.sent == []


def test_templates_and_their_params_are_checked():
    with pytest.raises(ValueError, match="unknown SMS template"):
        sms.send("+8613800138000", "marketing", {"text": "hi"})
    with pytest.raises(ValueError, match="takes code"):
        sms.send("+8613800138000", "verification", {"code": "1", "extra": "2"})


def test_console_backend_keeps_messages_and_prints_only_verification_codes(sms_outbox, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    sms.send("+8613800138000", "verification", {"code": "482913"})
    sms.send("+8613800138000", "delivery_codes", {"order": "K1", "url": "http://x/o/K1/", "codes": "CARD-CODE-77"})
    kept = sms_outbox("+8613800138000")
    assert [m["template"] for m in kept] == ["verification", "delivery_codes"]
    assert kept[1]["params"]["codes"] == "CARD-CODE-77"
    printed = caplog.text + "".join(capsys.readouterr())
    assert "482913" in printed  # the developer signing in needs the code
    assert "CARD-CODE-77" not in printed and "K1" not in printed  # a delivery is kept, never printed
    assert "+8613800138000" not in printed  # numbers are masked in the log
    assert ACCESS_KEY_ID not in printed
