import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_healthz_reports_database_and_redis(client, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "vendor": "postgresql", "ms": body["database"]["ms"]}
    assert body["broker"]["mode"] == "redis"
    assert body["broker"]["ok"] is True
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["broker"] == {"ok": False, "mode": "redis", "error": "ConnectionError"}
    assert body["database"]["ok"] is True


def test_healthz_is_503_when_the_database_is_down():
    script = (
        "import django; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/healthz', HTTP_HOST='localhost');"
        "print(r.status_code, r.content.decode())"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "kameng.settings",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing",
        "KAMENG_IGNORE_ENV_FILE": "1",
    }
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    status, body = result.stdout.strip().split(" ", 1)
    assert status == "503", result.stderr
    assert json.loads(body)["database"] == {"ok": False, "error": "OperationalError"}


def test_healthz_redirect_exemption_keeps_plain_http_probes_working(settings, client, db):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 301
