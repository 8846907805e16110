"""The start-up system check of the providers' configuration (payments/checks.py)."""

from __future__ import annotations

import secrets

import pytest
from cryptography.hazmat.primitives import serialization as ser
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from payments import providers
from payments.tests.conftest import (
    configure_alipay,
    configure_wechat,
    platform_certificate,
    private_pem,
    public_pem,
)


def problems() -> dict[str, str]:
    return {message.id: message.msg for message in run_checks(tags=["payments"])}


def test_nothing_configured_nothing_reported():
    assert problems() == {}
    assert [p.name for p in providers.available()] == ["sandbox"]


def test_correct_configuration_passes(settings, tmp_path, keyring):
    configure_alipay(settings, tmp_path, keyring)
    configure_wechat(settings, tmp_path, keyring, apiv3_key=secrets.token_hex(16))
    assert problems() == {}
    assert {p.name for p in providers.available()} == {"alipay", "wechat", "sandbox"}


def test_pkcs8_alipay_key_is_reported(settings, tmp_path, keyring):
    configure_alipay(settings, tmp_path, keyring, private=private_pem(keyring.alipay_app, ser.PrivateFormat.PKCS8))
    found = problems()
    assert list(found) == ["payments.W001"]
    assert "PKCS#8" in found["payments.W001"] and "ALIPAY_APP_PRIVATE_KEY_PATH" in found["payments.W001"]


def test_unreadable_key_path_is_an_error(settings, tmp_path, keyring):
    configure_alipay(settings, tmp_path, keyring)
    settings.ALIPAY_APP_PRIVATE_KEY_PATH = str(tmp_path / "missing.pem")
    found = problems()
    assert "ALIPAY_APP_PRIVATE_KEY_PATH" in found["payments.E002"] and "missing.pem" in found["payments.E002"]
    with pytest.raises(SystemCheckError, match=r"payments\.E002"):
        call_command("check")  # registered with Django: start-up stops here


def test_directory_instead_of_file_is_unreadable(settings, tmp_path, keyring):
    configure_wechat(settings, tmp_path, keyring, apiv3_key=secrets.token_hex(16))
    settings.WECHATPAY_PUBLIC_KEY_PATH = str(tmp_path)
    assert "WECHATPAY_PUBLIC_KEY_PATH" in problems()["payments.E002"]


def test_garbage_key_is_a_clear_error(settings, tmp_path, keyring):
    configure_alipay(settings, tmp_path, keyring, private=b"-----BEGIN PRIVATE KEY-----\nnot base64 at all\n")
    message = problems()["payments.E003"]
    assert message.startswith("ALIPAY_APP_PRIVATE_KEY_PATH: not an RSA private key")


def test_own_public_key_instead_of_alipays_is_an_error(settings, tmp_path, keyring):
    configure_alipay(settings, tmp_path, keyring, public=public_pem(keyring.alipay_app))
    assert "your app's own public key" in problems()["payments.E003"]


def test_partial_configuration_is_an_error_and_not_offered(settings, tmp_path, keyring):
    configure_alipay(settings, tmp_path, keyring)
    settings.ALIPAY_APP_ID = ""
    assert "ALIPAY_APP_ID not set" in problems()["payments.E001"]
    assert "alipay" not in [p.name for p in providers.available()]


def test_wechat_key_problems(settings, tmp_path, keyring):
    configure_wechat(settings, tmp_path, keyring, apiv3_key="too-short", public_key_id="")
    found = problems()
    assert "WECHATPAY_APIV3_KEY must be exactly 32 characters" in found["payments.E004"]
    assert "WECHATPAY_PUBLIC_KEY_ID is not set" in found["payments.E003"]


def test_wechat_certificate_mode_checks_the_serial(settings, tmp_path, keyring):
    certificate, serial = platform_certificate(keyring.wechat_platform)
    configure_wechat(settings, tmp_path, keyring, apiv3_key=secrets.token_hex(16), platform=certificate,
                     public_key_id="")  # fmt: skip
    assert problems() == {}
    settings.WECHATPAY_PUBLIC_KEY_ID = "ABCDEF0123"
    assert serial in problems()["payments.E003"]


def test_plain_http_notify_url_is_warned_about(settings, tmp_path, keyring):
    configure_alipay(settings, tmp_path, keyring)
    settings.PAYMENT_NOTIFY_BASE_URL = "http://shop.example"
    assert "payments.W003" in problems()
