"""The README's first command on a fresh machine: the embedded run (SQLite, eager Celery, sandbox).

The rest of the suite runs on PostgreSQL, so nothing else would notice a migration or a query that
only PostgreSQL understands. Here a child process gets exactly what ``make run`` gives the shop — a
fresh ``.env``-style environment, a new SQLite file, no REDIS_URL — migrates, seeds the demo shop,
and a guest buys a code through the sandbox gateway with Django's test client: the code is mailed to
the outbox folder and appears nowhere in the child's output. Then runserver starts on that file and
its periodic-jobs thread expires an overdue order and settles the delivered one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]

PURCHASE = r"""
from datetime import timedelta
from pathlib import Path
from django.utils import timezone
from django.test import Client
from django.test.utils import setup_test_environment
from django.urls import reverse
from catalog import codes
from catalog.models import Sku
from orders.models import Order, OrderItemCode

from django.conf import settings
embedded_mail = settings.EMAIL_BACKEND
setup_test_environment()  # response.context; the database stays the real file
settings.EMAIL_BACKEND = embedded_mail  # not the locmem mailbox: the embedded run's own outbox
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
secret = codes.decrypt(OrderItemCode.objects.get(item__order=order).code.payload)
code = secret.code
print("STATUS", order.status)
print("SHOWN", code in paid.content.decode())
kept = [path.read_text() for path in sorted(Path(settings.EMAIL_FILE_PATH).glob("*.eml"))]
print("MAILED", sum(code in text for text in kept))
print("SECRET", code, secret.password)  # read by the test, then removed from the output it checks

# An unpaid order past its deadline, for the periodic jobs of the server started next.
browser.post(reverse("orders:cart_add"), {"sku": sku.pk, "quantity": 1, "buy_now": "1"})
key = browser.get(reverse("orders:checkout")).context["form"]["idempotency_key"].value()
browser.post(reverse("orders:checkout"), {"idempotency_key": key, "email": "late@example.com"})
Order.objects.filter(email="late@example.com").update(reserved_until=timezone.now() - timedelta(minutes=1))
"""

STATE = r"""
from orders.models import Order
from payments.models import Settlement
print("STATE", Order.objects.get(email="late@example.com").status,
      Settlement.objects.filter(order__email="guest@example.com").count())
"""

# Buyers in four threads while the periodic jobs tick as fast as they can (a fake clock makes every
# interval job due each time): SQLite must queue the writers, never answer "database is locked".
CONCURRENT = r"""
import threading, uuid
from datetime import timedelta
from django.db import connections
from django.utils import timezone
from catalog.models import Sku
from orders import services
from payments import services as payments
from kameng.embedded import EmbeddedBeat

now = [timezone.now()]
beat = EmbeddedBeat(now=lambda: now[0])
stop, errors, ticks, bought = threading.Event(), [], [0], [0]

def ticker():
    while not stop.is_set():
        now[0] += timedelta(minutes=11)
        beat.tick()
        ticks[0] += 1

def buyer(n):
    skus = Sku.objects.filter(codes__status="available", product__status="listed", product__delivery_mode="automatic")
    sku = skus.distinct().order_by("pk")[n]
    for i in range(8):
        try:
            order = services.place_order(lines=[services.CartLine(sku_id=sku.pk, quantity=1)],
                                         email=f"t{n}-{i}@example.com", idempotency_key=uuid.uuid4().hex).order
            if i % 2:
                attempt, _ = payments.start_payment(order=order, provider_name="sandbox")
                payments.confirm_payment(out_trade_no=attempt.out_trade_no, amount_fen=order.total_fen,
                                         gateway_trade_no=f"G{attempt.pk}", provider="sandbox")
            bought[0] += 1
        except Exception as exc:
            errors.append(repr(exc))
    connections.close_all()

clock = threading.Thread(target=ticker)
clock.start()
buyers = [threading.Thread(target=buyer, args=(n,)) for n in range(4)]
for thread in buyers:
    thread.start()
for thread in buyers:
    thread.join()
stop.set()
clock.join()
print("CONCURRENT", bought[0], ticks[0] > 0, errors)
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
        "EMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
    }

    run("migrate", "--no-input", env=env)
    seeded = run("seed_demo", env=env)
    assert "merchant@kameng.local" in seeded.stdout
    assert "2 written while seeding" in seeded.stdout and "Content-Type" not in seeded.stdout + seeded.stderr
    run("seed_demo", env=env)  # idempotent: a second `make run` starts the same way

    bought = run("shell", "--no-imports", env=env, stdin=PURCHASE)
    assert "STATUS delivered" in bought.stdout, bought.stdout + bought.stderr
    assert "SHOWN True" in bought.stdout, bought.stdout
    assert "MAILED 1" in bought.stdout, bought.stdout
    (secret_line,) = [line for line in bought.stdout.splitlines() if line.startswith("SECRET ")]
    output = bought.stdout.replace(secret_line, "") + bought.stderr  # everything the child printed or logged
    for plaintext in secret_line.split()[1:]:
        assert plaintext not in output

    # runserver as `make run` starts it (autoreloader included): one periodic-jobs thread, in the child
    # that serves, which expires the overdue order and settles the delivered one without any request.
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**env, "KAMENG_SERVE_ADDRESS": f"127.0.0.1:{port}", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        state = ""
        while time.monotonic() < deadline and state != "STATE expired 1":
            time.sleep(2)
            state = run("shell", "--no-imports", env=env, stdin=STATE).stdout.strip().splitlines()[-1]
        assert state == "STATE expired 1", state
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        served, _ = server.communicate(timeout=30)
    assert served.count("Periodic jobs: running in-process") == 1, served
    for plaintext in secret_line.split()[1:]:
        assert plaintext not in served

    busy = run("shell", "--no-imports", env={**env, "MAX_UNPAID_ORDERS": "100"}, stdin=CONCURRENT)
    assert "CONCURRENT 32 True []" in busy.stdout, busy.stdout + busy.stderr[-3000:]
