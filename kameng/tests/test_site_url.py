"""`make run PORT=8100` left SITE_URL on :8000, so every e-mail link pointed at the wrong port.

The Makefile hands the address it serves on to the settings (KAMENG_SERVE_ADDRESS); SITE_URL from the
environment, then from .env, still wins.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from unittest import mock

import pytest

from kameng.env import Config, ConfigError
from kameng.tests.test_configuration import manage

ROOT = Path(__file__).resolve().parents[2]
SHOW = "from django.conf import settings; print('SITE', settings.SITE_URL)"


def site_url(env: dict[str, str]) -> str:
    result = manage("shell", "--no-imports", "-c", SHOW, env={"DEBUG": "true", **env})
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("SITE ")).split()[1]


def test_make_run_serves_and_links_on_the_same_address():
    dry = subprocess.run(
        ["make", "-n", "run", "HOST=127.0.0.1", "PORT=8100"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    lines = dry.stdout.splitlines()
    for command in ("manage.py seed_demo", "manage.py runserver 127.0.0.1:8100"):
        (line,) = [line for line in lines if command in line]
        address = line.split("KAMENG_SERVE_ADDRESS=", 1)[1].split()[0]
        assert site_url({"KAMENG_SERVE_ADDRESS": address}) == "http://127.0.0.1:8100"


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        ("127.0.0.1:8100", "http://127.0.0.1:8100"),
        ("localhost:9000", "http://localhost:9000"),
        ("0.0.0.0:8100", "http://127.0.0.1:8100"),  # listening everywhere: link to this machine
        ("[::]:8100", "http://[::1]:8100"),
    ],
)
def test_the_served_address_becomes_the_site_url(served, expected):
    with mock.patch.dict(os.environ, {"KAMENG_SERVE_ADDRESS": served}, clear=False):
        os.environ.pop("SITE_URL", None)
        assert Config().site_url("SITE_URL", served_name="KAMENG_SERVE_ADDRESS", default="x") == expected


def test_site_url_from_the_environment_or_env_file_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SITE_URL=https://from-env-file.example\n")
    with mock.patch.dict(os.environ, {"KAMENG_SERVE_ADDRESS": "127.0.0.1:8100"}, clear=False):
        for name in ("SITE_URL", "KAMENG_IGNORE_ENV_FILE"):
            os.environ.pop(name, None)
        from_file = Config(env_file).site_url("SITE_URL", served_name="KAMENG_SERVE_ADDRESS", default="x")
        assert from_file == "https://from-env-file.example"
        os.environ["SITE_URL"] = "https://from-environment.example"  # real environment beats .env
        from_env = Config(env_file).site_url("SITE_URL", served_name="KAMENG_SERVE_ADDRESS", default="x")
        assert from_env == "https://from-environment.example"
    assert site_url({"SITE_URL": "https://shop.example", "KAMENG_SERVE_ADDRESS": "127.0.0.1:8100"}) == (
        "https://shop.example"
    )
    assert site_url({}) == "http://127.0.0.1:8000"  # plain runserver, nothing set


def test_a_malformed_served_address_is_named():
    with mock.patch.dict(os.environ, {"KAMENG_SERVE_ADDRESS": "127.0.0.1:http"}, clear=False):
        os.environ.pop("SITE_URL", None)
        config = Config()
        config.site_url("SITE_URL", served_name="KAMENG_SERVE_ADDRESS", default="x")
        with pytest.raises(ConfigError, match=re.escape("KAMENG_SERVE_ADDRESS='127.0.0.1:http' is not valid")):
            config.finish()
