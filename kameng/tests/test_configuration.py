"""Start-up with a bad environment: one clear message naming the variable, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from kameng.env import Config, ConfigError

ROOT = Path(__file__).resolve().parents[2]
GOOD_PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "-production-secret-for-tests-only-0123456789abcdef",
    "ALLOWED_HOSTS": "shop.example.com",
    "DATABASE_URL": "postgres://kameng:secret@127.0.0.1:5432/kameng",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "CARD_CODE_KEYS": Fernet.generate_key().decode(),
    "EMAIL_URL": "smtp://localhost:25",
    "SITE_URL": "https://shop.example.com",
    "ALIYUN_SMS_ACCESS_KEY_ID": "LTAI5tProductionTestKeyId",
    "ALIYUN_SMS_ACCESS_KEY_SECRET": "production-test-secret",
    "ALIYUN_SMS_SIGN_NAME": "卡盟",
    "ALIYUN_SMS_TEMPLATE_VERIFICATION": "SMS_100000001",
    "ALIYUN_SMS_TEMPLATE_DELIVERY": "SMS_100000002",
}
ALIYUN_REQUIRED = [
    "ALIYUN_SMS_ACCESS_KEY_ID", "ALIYUN_SMS_ACCESS_KEY_SECRET", "ALIYUN_SMS_SIGN_NAME",
    "ALIYUN_SMS_TEMPLATE_VERIFICATION", "ALIYUN_SMS_TEMPLATE_DELIVERY",
]  # fmt: skip


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in GOOD_PRODUCTION and not k.startswith("DJANGO_ALLOW")}
    clean["KAMENG_IGNORE_ENV_FILE"] = "1"
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_without_secrets_names_every_missing_variable():
    result = manage("check", env={"DEBUG": "false"})
    assert result.returncode == 2
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "CARD_CODE_KEYS", "EMAIL_URL", "SITE_URL"):
        assert f"{name} is required when DEBUG is off" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        (
            "DATABASE_URL",
            "mysql://root@db/shop",
            "DATABASE_URL is not a usable database URL (unsupported scheme 'mysql')",
        ),
        ("DATABASE_URL", "postgres://kameng@db:notaport/shop", "DATABASE_URL is not a usable database URL"),
        ("DATABASE_URL", "postgres://kameng@db:5432", "no database name"),
        ("REDIS_URL", "http://cache:6379", "REDIS_URL='http://cache:6379' is not valid"),
        ("CARD_CODE_KEYS", "not-a-key", "key #1 is not a 32-byte url-safe base64 Fernet key"),
        ("SECRET_KEY", "short", "SECRET_KEY is too short"),
        ("PLATFORM_COMMISSION_RATE", "10", "must be at least 0 and below 1"),
        ("CHECKOUT_RATE_LIMIT", "thirty", "CHECKOUT_RATE_LIMIT='thirty' is not valid: expected a rate such as 30/m"),
        ("DEBUG", "maybe", "DEBUG='maybe' is not valid: expected true or false"),
    ],
)
def test_malformed_variable_is_named(name, value, fragment):
    result = manage("check", env={**GOOD_PRODUCTION, name: value})
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_production_sends_sms_through_aliyun_and_names_each_missing_setting():
    result = manage("check", env={k: v for k, v in GOOD_PRODUCTION.items() if k not in ALIYUN_REQUIRED})
    assert result.returncode == 2
    for name in ALIYUN_REQUIRED:
        assert f"{name} is required when SMS_BACKEND is aliyun" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_refuses_the_console_sms_backend():
    # It logs sign-in codes (accounts/sms.py): fine on a developer's machine, not in production logs.
    result = manage("check", env={**GOOD_PRODUCTION, "SMS_BACKEND": "console"})
    assert result.returncode == 2
    assert "SMS_BACKEND=console is refused when DEBUG is off" in result.stderr


def test_unreachable_database_is_explained_not_a_traceback():
    env = {**GOOD_PRODUCTION, "DATABASE_URL": "postgres://kameng:secret@127.0.0.1:1/kameng"}
    result = manage("migrate", env=env)
    assert result.returncode == 2
    assert "Cannot use the PostgreSQL database 'kameng' at 127.0.0.1:1 (DATABASE_URL)" in result.stderr
    assert "secret" not in result.stderr  # the password is never echoed
    assert "Traceback" not in result.stderr


def test_a_failing_statement_is_not_blamed_on_the_connection(tmp_path):
    env = {"DEBUG": "true", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    broken = "from django.db import connection; connection.cursor().execute('SELEC 1')"

    result = manage("shell", "-c", broken, env=env)

    assert result.returncode == 2
    assert 'refused a statement: near "SELEC": syntax error' in result.stderr
    assert "Is the server running" not in result.stderr and "Traceback" not in result.stderr
    assert "Traceback" in manage("shell", "-c", broken, "--traceback", env=env).stderr  # details on request


def test_check_deploy_is_clean_in_production_mode():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=GOOD_PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_embedded_mode_needs_nothing():
    result = manage("check", env={})
    assert result.returncode == 0, result.stderr


def test_config_collects_problems_and_parses_values(monkeypatch):
    monkeypatch.setenv("KX_BOOL", "off")
    monkeypatch.setenv("KX_LIST", " a, b ,,c ")
    monkeypatch.setenv("KX_INT", "12x")
    cfg = Config()
    assert cfg.bool("KX_BOOL", default=True) is False
    assert cfg.list("KX_LIST", default=[]) == ["a", "b", "c"]
    assert cfg.int("KX_INT", default=5) == 5
    assert cfg.int("KX_UNSET", default=7) == 7
    with pytest.raises(ConfigError, match="KX_INT='12x' is not valid: expected an integer"):
        cfg.finish()


def test_fernet_keys_accepts_several_keys_newest_first(monkeypatch):
    keys = [Fernet.generate_key().decode() for _ in range(2)]
    monkeypatch.setenv("KX_KEYS", ",".join(keys))
    cfg = Config()
    assert cfg.fernet_keys("KX_KEYS", default=[]) == keys
    cfg.finish()


def test_production_static_files_build_as_in_the_dockerfile(tmp_path):
    """The Dockerfile's collectstatic step: hashed, compressed files for WhiteNoise."""
    result = manage("collectstatic", "--no-input", env={**GOOD_PRODUCTION, "STATIC_ROOT": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    css = sorted(p.name for p in (tmp_path / "css").iterdir())
    assert any(name.startswith("kameng.") and name.endswith(".css.gz") and name.count(".") == 3 for name in css), css
