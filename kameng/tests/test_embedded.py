"""The README's first command on a fresh machine: the embedded run (SQLite, eager Celery, sandbox).

The rest of the suite runs on PostgreSQL, so nothing else would notice a migration or a query that
only PostgreSQL understands. Here a child process gets exactly what ``make run`` gives the shop — a
fresh ``.env``-style environment, a new SQLite file, no REDIS_URL — migrates, seeds the demo shop,
and a guest buys a code through the sandbox gateway with Django's test client.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]

PURCHASE = r"""
from django.core import mail
from django.test import Client
from django.test.utils import setup_test_environment
from django.urls import reverse
from catalog import codes
from catalog.models import Sku
from orders.models import Order, OrderItemCode

setup_test_environment()  # response.context and a locmem mailbox; the database stays the real file
browser = Client()
browser.cookies["django_language"] = "en"
assert browser.get("/").status_code == 200
in_stock = Sku.objects.filter(codes__status="available", product__status="listed")
sku = in_stock.filter(product__delivery_mode="automatic").order_by("pk").first()
assert browser.get(sku.product.get_absolute_url()).status_code == 200
browser.post(reverse("orders:cart_add"), {"sku": sku.pk, "quantity": 1, "buy_now": "1"})
form = browser.get(reverse("orders:checkout"))
key = form.context["form"]["idempotency_key"].value()
placed = browser.post(reverse("orders:checkout"), {"idempotency_key": key, "email": "guest@example.com"})
order = Order.objects.get(email="guest@example.com")
assert placed.url == order.get_absolute_url(), placed
started = browser.post(reverse("payments:start", args=[order.number]), {"provider": "sandbox"})
assert started.status_code == 302, started.status_code
paid = browser.post(started.url, {"action": "pay"}, follow=True)
order.refresh_from_db()
code = codes.decrypt(OrderItemCode.objects.get(item__order=order).code.payload).code
print("STATUS", order.status)
print("SHOWN", code in paid.content.decode())
print("MAILED", sum(code in message.body for message in mail.outbox))
"""


def run(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_fresh_sqlite_migrates_seeds_and_sells_a_code_through_the_sandbox(tmp_path):
    inherited = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}}
    env = {
        **inherited,
        "KAMENG_IGNORE_ENV_FILE": "1",  # not this checkout's .env: exactly what envfile writes
        "DEBUG": "true",
        "SECRET_KEY": "embedded-run-test-" + "x" * 40,
        "CARD_CODE_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
    }

    run("migrate", "--no-input", env=env)
    seeded = run("seed_demo", env=env)
    assert "merchant@kameng.local" in seeded.stdout
    run("seed_demo", env=env)  # idempotent: a second `make run` starts the same way

    bought = run("shell", "--no-imports", env=env, stdin=PURCHASE)
    assert "STATUS delivered" in bought.stdout, bought.stdout + bought.stderr
    assert "SHOWN True" in bought.stdout, bought.stdout
    assert "MAILED 1" in bought.stdout, bought.stdout
