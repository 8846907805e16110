"""Checkout under load: many guest buyers check out and pay through the sandbox, against the full stack.

The script starts its own stack in a scratch directory — PostgreSQL and Redis (kameng.localservices),
gunicorn, one Celery worker — migrates, seeds the demo shop plus a bench product with enough codes,
then drives buyers over real HTTP at an open-loop arrival rate. Each buyer, like a phone browser:

    GET  /p/bench-card/                      product page (CSRF cookie)
    POST /orders/cart/add/  buy_now=1        -> 302 /orders/checkout/
    GET  /orders/checkout/                   form: csrfmiddlewaretoken, idempotency_key, pay_with
    POST /orders/checkout/  email=… pay_with=sandbox
                                             -> 302 /payments/sandbox/<out_trade_no>/
                                                (order placed, code reserved, payment attempt opened)
    GET  /payments/sandbox/<out_trade_no>/   the sandbox "cashier" page
    POST /payments/sandbox/<out_trade_no>/ action=pay -> 302 return -> 302 /orders/<number>/ -> 200

That is 8 requests. ``--pay-on-order-page`` places the order without ``pay_with`` and pays from the order
page instead (GET /orders/<number>/, POST /payments/start/<number>/ provider=sandbox): 10 requests, the
flow of every buyer before the checkout form offered the way to pay (and today of a buyer who pays later).

Paid-to-delivered latency is read from the database after the run (Order.delivered_at − paid_at,
both stamped by the server: paid_at when the payment is confirmed, delivered_at when the Celery
worker's delivery transaction starts), so it includes the on-commit enqueue, Redis, and the time the
task waited for a free worker. Client-side times are measured from each buyer's *scheduled* arrival,
so time spent waiting for a free buyer thread is counted, not hidden (no coordinated omission).

After the run the database is checked: every buyer's order paid and delivered, no single-use code
with times_sold > 1, no code in two delivered OrderItemCode rows, sold codes == delivered links.

Usage (from the repository root):

    .venv/bin/python bench/checkout.py                           # the target run: 20 orders/s for 60 s
    .venv/bin/python bench/checkout.py --rate 5 --duration 10    # a quick smoke run
    .venv/bin/python bench/checkout.py --rate 10 --json r10.json # keep the per-order numbers
    .venv/bin/python bench/checkout.py --chart docs/checkout-latency.svg r8.json r10.json r20.json
                                                                 # no run: the chart of earlier runs
    .venv/bin/python bench/checkout.py --keep                    # after the report the stack stays up
                                                                 # (URLs printed) until Ctrl-C

Other knobs: --buyers (concurrent buyer threads, default 100), --arrivals uniform|poisson,
--minimal (no sandbox page, no redirects after Pay), --pay-on-order-page, --web-workers, --web-threads,
--celery-concurrency, --celery-pool, --conn-max-age, --codes (stock of the bench SKU),
--pg-stats (pg_stat_statements: the costliest statements per order), --pg-log-min-duration MS,
--settings MODULE (try a settings change without editing the app), --svg (chart of this run),
--dir (scratch dir; default a new temporary one, deleted afterwards unless --keep or --dir).
The report also gives CPU per order of each process (gunicorn, Celery, PostgreSQL, Redis, this
script) and what other processes used meanwhile: on a shared machine, check that line first.
Exit status: 0 when the target is met (p99 paid→delivered under --target-p99 seconds, achieved
rate ≥ 95% of --rate, zero errors, zero double-sold codes), 1 when missed, 2 when the stack failed.

Bench-only settings of the stack (environment): DEBUG=true (the sandbox provider exists only with
DEBUG on), MAX_UNPAID_ORDERS=100000 and DB_CONN_MAX_AGE=60 (the production default). Buyers share
one machine, so each buyer connects from its own loopback address (127.77.x.y): the checkout view's
per-IP rate limit (CHECKOUT_RATE_LIMIT, left at its default 30/m) and the per-IP unpaid-order limit
then apply per buyer as they would on the internet. Needs the Debian packages postgresql and redis-server.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import math
import os
import queue
import random
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kameng.localservices import PostgresServer, RedisServer, ServiceError, free_port  # noqa: E402

PRODUCT_SLUG = "bench-card"
SKU_LABEL = "bench"
EMAIL_DOMAIN = "bench.example.com"
CHUNK = 1000  # codes per add_codes call (one transaction each)
STEPS = [
    "product",
    "add",
    "checkout_form",
    "place_order",
    "order_page",
    "start_payment",
    "gateway_page",
    "pay",
    "after_pay",
]


# -- the stack ---------------------------------------------------------------------------------------


class Stack:
    """PostgreSQL, Redis, gunicorn and a Celery worker in ``scratch``; :meth:`stop` ends them all."""

    def __init__(self, scratch: Path, args: argparse.Namespace):
        self.scratch, self.args = scratch, args
        self.postgres = PostgresServer(scratch / "postgres")
        self.redis = RedisServer(scratch / "redis")
        self.servers: list = []
        self.processes: dict[str, subprocess.Popen] = {}
        self.web_port = free_port()
        self.env: dict[str, str] = {}

    def start(self) -> None:
        self.servers.append(self.postgres)
        database_url = self.postgres.start()
        self.servers.append(self.redis)
        redis_url = self.redis.start()
        if self.args.pg_log_min_duration is not None:
            self.psql(
                f"ALTER SYSTEM SET log_min_duration_statement = {int(self.args.pg_log_min_duration)}",
                "SELECT pg_reload_conf()",
            )
        if self.args.pg_stats:  # needs a restart to load the library
            self.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            self.postgres.stop()
            self.postgres.start()
            self.psql(
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
                "ALTER SYSTEM SET pg_stat_statements.track_planning = on",
                "SELECT pg_reload_conf()",
            )
        self.env = {
            **os.environ,
            "KAMENG_IGNORE_ENV_FILE": "1",  # a developer's .env must not change the bench
            "DJANGO_SETTINGS_MODULE": self.args.settings,
            "DEBUG": "true",  # the sandbox payment provider exists only with DEBUG on
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CARD_CODE_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "SITE_URL": f"http://127.0.0.1:{self.web_port}",
            # As measured so far (the default of DEBUG runs is now an outbox folder: a file per order).
            "EMAIL_URL": "consolemail://",
            # All buyers come from this machine; per-IP limits are handled with distinct source
            # addresses, this lifts the per-IP unpaid-order cap as the task asks.
            "MAX_UNPAID_ORDERS": str(self.args.max_unpaid_orders),
            "DB_CONN_MAX_AGE": str(self.args.conn_max_age),
        }
        python = sys.executable
        for command in (["migrate", "--no-input"], ["seed_demo"]):
            subprocess.run(
                [python, "manage.py", *command],
                cwd=ROOT,
                env=self.env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )

    def psql(self, *statements: str) -> list[tuple]:
        """Run statements as the superuser; returns the rows of the last one."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.postgres.port, user="postgres", dbname="kameng")
        connection.autocommit = True
        rows: list[tuple] = []
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                rows = cursor.fetchall() if cursor.description else []
        connection.close()
        return rows

    def print_pg_stats(self, orders: int, top: int = 15) -> None:
        """The statements PostgreSQL spent most time on (planning + execution) since the last reset."""
        rows = self.psql(
            "SELECT calls, total_plan_time + total_exec_time, rows, regexp_replace(query, '\\s+', ' ', 'g') "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'kameng') "
            "ORDER BY 2 DESC"
        )[:top]
        total = self.psql(
            "SELECT sum(calls), sum(total_plan_time + total_exec_time) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'kameng')"
        )[0]
        n = max(orders, 1)
        print(
            f"PostgreSQL statements: {int(total[0] or 0) / n:.1f} per order, "
            f"{float(total[1] or 0) / n:.1f} ms per order (plan + execute); the top {top}:"
        )
        print("   calls/order  ms/order  ms/call  statement")
        for calls, spent, _rows, query in rows:
            print(f"   {calls / n:11.2f}  {spent / n:8.2f}  {spent / max(calls, 1):7.3f}  {query[:150]}")

    def spawn(self) -> None:
        bindir = Path(sys.executable).parent
        a = self.args
        worker_class = "gthread" if a.web_threads > 1 else "sync"
        self._spawn(
            "gunicorn",
            [
                str(bindir / "gunicorn"),
                "kameng.wsgi",
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                str(a.web_workers),
                "--worker-class",
                worker_class,
                "--threads",
                str(a.web_threads),
                "--backlog",
                "2048",
                "--timeout",
                "60",
                "--log-level",
                "warning",
            ],
        )
        self._spawn(
            "celery",
            [
                str(bindir / "celery"),
                "-A",
                "kameng",
                "worker",
                "--hostname",
                "bench@%h",
                "--pool",
                a.celery_pool,
                "--concurrency",
                str(a.celery_concurrency),
                "--prefetch-multiplier",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
        )

    def _spawn(self, name: str, command: list[str]) -> None:
        with open(self.scratch / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            # Own session: Ctrl-C in the terminal reaches only this script, which stops them in order.
            self.processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 60) -> None:
        from kameng.celery import app

        deadline = time.monotonic() + timeout
        web_ok = worker_ok = False
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ServiceError(f"{name} exited at start-up; see {self.scratch / (name + '.log')}")
            if not web_ok:
                try:
                    status, _, _ = http_request("127.0.0.1", self.web_port, "GET", "/healthz", {}, timeout=2)
                    web_ok = status == 200
                except OSError:
                    pass
            if not worker_ok:
                worker_ok = bool(app.control.ping(timeout=0.5))
            if web_ok and worker_ok:
                return
            time.sleep(0.2)
        raise ServiceError(f"stack not ready within {timeout}s (web={web_ok}, worker={worker_ok})")

    def exited(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def stop(self) -> None:
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=5)
        self.processes.clear()
        while self.servers:
            self.servers.pop().stop()

    def roots(self) -> dict[str, int]:
        """The root process of each component, for CPU accounting."""
        found = {name: process.pid for name, process in self.processes.items()}
        for name, server in (("postgres", self.postgres), ("redis", self.redis)):
            if server.process is not None:
                found[name] = server.process.pid
        return found


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


# -- CPU accounting ----------------------------------------------------------------------------------


def tree_cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each component: its root process and all its descendants (by parent
    pid, not process group: PostgreSQL backends start sessions of their own), plus the children they
    reaped (cutime). Also this script, and the whole machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent, spent = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parent[int(entry)] = int(fields[1])
        spent[int(entry)] = sum(int(value) for value in fields[11:15]) / ticks
    owner = {pid: name for name, pid in roots.items()}
    totals = dict.fromkeys(roots, 0.0)
    for pid in spent:
        ancestor, hops = pid, 0
        while ancestor not in owner and ancestor > 1 and hops < 64:
            ancestor, hops = parent.get(ancestor, 0), hops + 1
        if ancestor in owner:
            totals[owner[ancestor]] += spent[pid]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    totals["bench client"] = usage.ru_utime + usage.ru_stime
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    totals["_machine_busy"] = (sum(values) - values[3] - values[4]) / ticks  # minus idle and iowait
    totals["_machine_all"] = sum(values) / ticks
    return totals


# -- one buyer's browser -----------------------------------------------------------------------------


class FlowError(Exception):
    def __init__(self, step: str, reason: str):
        super().__init__(f"{step}: {reason}")
        self.step, self.reason = step, reason


def http_request(host, port, method, path, headers, body=None, *, source=None, timeout=30.0):
    connection = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(source, 0) if source else None)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.msg, response.read()
    finally:
        connection.close()


class Browser:
    """Cookies, a source address of its own, redirects followed like a browser does after a POST."""

    def __init__(self, port: int, source: str, timeout: float):
        self.port, self.source, self.timeout = port, source, timeout
        self.cookies: dict[str, str] = {}
        self.requests = 0

    def _send(self, method: str, path: str, form: dict | None = None):
        headers = {"Host": f"127.0.0.1:{self.port}", "Connection": "close", "User-Agent": "kameng-bench/1"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.requests += 1
        status, msg, content = http_request(
            "127.0.0.1", self.port, method, path, headers, body, source=self.source, timeout=self.timeout
        )
        for header in msg.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return status, msg, content

    def request(
        self, step: str, method: str, path: str, form: dict | None = None, *, expect: int = 200, follow: bool = False
    ):
        """One request (plus the redirects a browser follows when ``follow``). Returns (path, body)."""
        status, msg, content = self._send(method, path, form)
        hops = 0
        while follow and status in (301, 302, 303) and hops < 5:
            path, hops = urllib.parse.urlsplit(msg["Location"]).path, hops + 1
            status, msg, content = self._send("GET", path)
        if status != expect:
            detail = _messages(content) or content[:200].decode(errors="replace")
            raise FlowError(step, f"HTTP {status} (expected {expect}) {detail}".strip())
        if status in (301, 302, 303):
            return urllib.parse.urlsplit(msg["Location"]).path, content
        return path, content


def _messages(content: bytes) -> str:
    text = content.decode(errors="replace")
    found = re.findall(r'<li class="message[^"]*">(.*?)</li>', text, re.S)
    found += re.findall(r'<span class="error">(.*?)</span>', text, re.S)
    return " | ".join(item.strip() for item in found)


def _hidden(content: bytes, name: str, step: str) -> str:
    tag = re.search(rb'<input[^>]*name="' + name.encode() + rb'"[^>]*>', content)
    value = re.search(rb'value="([^"]*)"', tag.group(0)) if tag else None
    if not value:
        raise FlowError(step, f"no {name} in the page")
    return value.group(1).decode()


@dataclass
class Flow:
    index: int
    scheduled: float  # monotonic time the buyer was due to arrive
    started: float = 0.0
    finished: float = 0.0
    number: str = ""
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    paid: float = 0.0  # monotonic time the pay POST answered (payment confirmed)
    error: FlowError | None = None
    requests: int = 0


def run_flow(
    flow: Flow,
    *,
    port: int,
    run_id: str,
    tag: str,
    timeout: float,
    minimal: bool = False,
    pay_on_order_page: bool = False,
) -> Flow:
    """One buyer, start to finish. The way to pay is chosen on the checkout form, so placing the order
    lands on the sandbox page; ``pay_on_order_page`` leaves it out and pays from the order page instead
    (its pay button: two requests more, the flow of a buyer who pays later or tries again).
    ``minimal`` skips what a browser does but the server need not see: loading the sandbox page (an
    earlier page's CSRF token is as good) and following the redirects after Pay back to the order page."""
    flow.started = time.monotonic()
    buyer = Browser(port, source=f"127.77.{flow.index // 250 % 250}.{flow.index % 250 + 1}", timeout=timeout)
    mark = flow.started

    def lap(step: str) -> None:
        nonlocal mark
        now = time.monotonic()
        flow.steps[step], mark = now - mark, now

    try:
        _, page = buyer.request("product", "GET", f"/p/{PRODUCT_SLUG}/")
        sku = re.search(rb'name="sku" value="(\d+)"', page)
        if not sku:
            raise FlowError("product", "no SKU on the product page")
        token = _hidden(page, "csrfmiddlewaretoken", "product")
        lap("product")
        where, _ = buyer.request(
            "add",
            "POST",
            "/orders/cart/add/",
            {"csrfmiddlewaretoken": token, "sku": sku.group(1).decode(), "quantity": "1", "buy_now": "1"},
            expect=302,
        )
        if where != "/orders/checkout/":
            raise FlowError("add", f"redirected to {where}")
        lap("add")
        _, page = buyer.request("checkout_form", "GET", "/orders/checkout/")
        token = _hidden(page, "csrfmiddlewaretoken", "checkout_form")
        form = {
            "csrfmiddlewaretoken": token,
            "idempotency_key": _hidden(page, "idempotency_key", "checkout_form"),
            "email": f"{tag}-{run_id}-{flow.index:05d}@{EMAIL_DOMAIN}",
        }
        if not pay_on_order_page:
            if b'name="pay_with" value="sandbox"' not in page:
                raise FlowError("checkout_form", "the sandbox is not offered on the checkout form")
            form["pay_with"] = "sandbox"
        lap("checkout_form")
        where, _ = buyer.request("place_order", "POST", "/orders/checkout/", form, expect=302)
        if pay_on_order_page:
            number = re.fullmatch(r"/orders/(K\d+)/", where)
            if not number:
                raise FlowError("place_order", f"redirected to {where}")
            flow.number = number.group(1)
            lap("place_order")
            _, page = buyer.request("order_page", "GET", where)
            token = _hidden(page, "csrfmiddlewaretoken", "order_page")
            lap("order_page")
            where, _ = buyer.request(
                "start_payment",
                "POST",
                f"/payments/start/{flow.number}/",
                {"csrfmiddlewaretoken": token, "provider": "sandbox"},
                expect=302,
            )
            if not where.startswith("/payments/sandbox/"):
                raise FlowError("start_payment", f"redirected to {where}")
            lap("start_payment")
        elif not where.startswith("/payments/sandbox/"):
            raise FlowError("place_order", f"redirected to {where}, not to the sandbox")
        else:
            lap("place_order")
        if not minimal:
            _, page = buyer.request("gateway_page", "GET", where)
            token = _hidden(page, "csrfmiddlewaretoken", "gateway_page")
            number = re.search(rb"K\d{10,}", page)
            if not flow.number and number:
                flow.number = number.group(0).decode()
            lap("gateway_page")
        back, _ = buyer.request("pay", "POST", where, {"csrfmiddlewaretoken": token, "action": "pay"}, expect=302)
        flow.paid = time.monotonic()
        lap("pay")
        if not minimal:
            _, page = buyer.request("after_pay", "GET", back, follow=True)  # return page -> order page
            if f"/orders/{flow.number}/".encode() not in page:
                raise FlowError("after_pay", "did not land on the order page")
            lap("after_pay")
    except FlowError as exc:
        flow.error = exc
    except (OSError, http.client.HTTPException) as exc:
        step = next((s for s in STEPS if s not in flow.steps), "?")
        flow.error = FlowError(step, f"{exc.__class__.__name__}: {exc}")
    flow.finished = time.monotonic()
    flow.requests = buyer.requests
    return flow


def drive(
    *,
    port: int,
    rate: float,
    duration: float,
    buyers: int,
    arrivals: str,
    run_id: str,
    tag: str,
    timeout: float,
    seed: int,
    stop: threading.Event,
    minimal: bool,
    pay_on_order_page: bool = False,
) -> tuple[list[Flow], float, float]:
    """Open loop: buyer *i* is due at its arrival time whether or not earlier buyers are done.
    Returns the flows, and the wall-clock time of the first and the last arrival."""
    count = max(1, round(rate * duration))
    if arrivals == "poisson":  # a Poisson process conditioned on ``count`` arrivals in ``duration``
        rng = random.Random(seed)
        offsets = sorted(rng.uniform(0, duration) for _ in range(count))
    else:
        offsets = [i / rate for i in range(count)]
    due: queue.Queue = queue.Queue()
    flows: list[Flow] = []
    lock = threading.Lock()

    def buyer_thread() -> None:
        while True:
            flow = due.get()
            if flow is None:
                return
            run_flow(
                flow, port=port, run_id=run_id, tag=tag, timeout=timeout, minimal=minimal,
                pay_on_order_page=pay_on_order_page,
            )  # fmt: skip
            with lock:
                flows.append(flow)

    threads = [threading.Thread(target=buyer_thread, daemon=True) for _ in range(buyers)]
    for thread in threads:
        thread.start()
    start_mono, start_wall = time.monotonic() + 0.2, time.time() + 0.2
    for index, offset in enumerate(offsets):
        delay = start_mono + offset - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        due.put(Flow(index=index, scheduled=start_mono + offset))
    for _ in threads:
        due.put(None)
    for thread in threads:
        while thread.is_alive() and not stop.is_set():
            thread.join(0.5)
    return sorted(flows, key=lambda f: f.index), start_wall, start_wall + offsets[-1]


# -- seeding and checking (Django, in this process) ---------------------------------------------------


def setup_django(env: dict[str, str]) -> None:
    for name in (
        "KAMENG_IGNORE_ENV_FILE",
        "DJANGO_SETTINGS_MODULE",
        "DEBUG",
        "DATABASE_URL",
        "REDIS_URL",
        "SECRET_KEY",
        "CARD_CODE_KEYS",
        "SITE_URL",
        "EMAIL_URL",
        "MAX_UNPAID_ORDERS",
        "DB_CONN_MAX_AGE",
    ):
        os.environ[name] = env[name]
    import django

    django.setup()


def seed_bench_product(*, codes: int, run_id: str) -> int:
    """A listed product with one SKU and ``codes`` fresh codes (added in chunks); returns the SKU id."""
    from accounts.models import Merchant
    from catalog import codes as card_codes
    from catalog import services
    from catalog.models import Category, Product, Sku

    product, _ = Product.objects.update_or_create(
        slug=PRODUCT_SLUG,
        defaults={
            "merchant": Merchant.objects.get(slug="demo-cards"),
            "category": Category.objects.get(slug="game-cards"),
            "title": "压测点卡",
            "title_en": "Bench card",
            "status": Product.Status.LISTED,
            "delivery_mode": Product.DeliveryMode.AUTOMATIC,
            "min_per_order": 1,
            "max_per_order": 10,
        },
    )
    sku, _ = Sku.objects.update_or_create(product=product, label=SKU_LABEL, defaults={"price_fen": 100})
    for start in range(0, codes, CHUNK):
        secrets_ = [card_codes.Secret(code=f"BENCH-{run_id}-{n:08d}") for n in range(start, min(codes, start + CHUNK))]
        services.add_codes(sku=sku, secrets=secrets_)
    return sku.pk


def wait_delivered(*, run_id: str, tag: str, timeout: float) -> float:
    """Wait until no order of this run is paid-but-undelivered; returns the seconds waited."""
    from orders.models import Order

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not Order.objects.filter(email__startswith=f"{tag}-{run_id}-", status=Order.Status.PAID).exists():
            break
        time.sleep(0.25)
    return time.monotonic() - started


@dataclass
class Checked:
    orders: list[dict]
    status_counts: dict[str, int]
    paid: int
    delivered: int
    wrong_code_count: int  # delivered orders without exactly one delivered code
    double_sold: int  # single-use codes with times_sold > 1
    double_linked: int  # codes in two delivered OrderItemCode rows
    sold_vs_links: tuple[int, int]  # sold single-use codes of the bench SKU, delivered links to them


def check_database(*, run_id: str, tag: str, sku_id: int) -> Checked:
    from django.db.models import Count

    from catalog.models import CardCode
    from orders.models import Order, OrderItemCode

    orders = list(
        Order.objects.filter(email__startswith=f"{tag}-{run_id}-")
        .annotate(codes=Count("items__codes", filter=_delivered_q()))
        .values("number", "status", "created_at", "paid_at", "delivered_at", "codes")
    )
    counts: dict[str, int] = {}
    for order in orders:
        counts[order["status"]] = counts.get(order["status"], 0) + 1
    delivered_links = OrderItemCode.objects.filter(status=OrderItemCode.Status.DELIVERED, reusable=False)
    return Checked(
        orders=orders,
        status_counts=counts,
        paid=sum(order["paid_at"] is not None for order in orders),
        delivered=sum(
            order["status"] == Order.Status.DELIVERED and order["delivered_at"] is not None for order in orders
        ),
        wrong_code_count=sum(order["status"] == Order.Status.DELIVERED and order["codes"] != 1 for order in orders),
        double_sold=CardCode.objects.filter(reusable=False, times_sold__gt=1).count(),
        double_linked=delivered_links.values("code_id").annotate(n=Count("id")).filter(n__gt=1).count(),
        sold_vs_links=(
            CardCode.objects.filter(sku_id=sku_id, reusable=False, status=CardCode.Status.SOLD).count(),
            delivered_links.filter(code__sku_id=sku_id).count(),
        ),
    )


def _delivered_q():
    from django.db.models import Q

    return Q(items__codes__status="delivered")


# -- numbers -----------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 1200 samples is the 1188th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
    }


def ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value * 1000:.0f} ms"


def print_latency(label: str, values: list[float], note: str = "", *, width: int = 16) -> None:
    s = summary(values)
    cells = "  ".join(f"{p} {ms(s[p]):>8}" for p in ("p50", "p95", "p99", "max"))
    print(f"{label:<{width}} {cells}" + (f"   ({note})" if note else ""))


@dataclass
class Series:
    name: str
    values: list[float]
    colour: str
    dashed: bool = False


COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]  # red is the target's


def write_svg(path: Path, series: list[Series], *, target: float, title: str) -> None:
    """Percentile plot, hand-written SVG: x = percentile on a "nines" scale (p0, p90, p99, p99.9, the
    tail is where the interest is), y = latency on a log scale; the target as a dashed red line."""
    width, left, right, top, plot_h = 760, 70, 20, 40, 300
    plot_w = width - left - right
    legend_top = top + plot_h + 46
    height = legend_top + 20 * len(series) + 10
    x_max = 3.0  # p99.9
    values = [v for line in series for v in line.values if v > 0] + [target]
    y_lo = 10 ** math.floor(math.log10(max(min(values), 1e-3)))
    y_hi = 10 ** math.ceil(math.log10(max(values)))

    def x_of(p: float) -> float:
        return left + min(x_max, -math.log10(max(1 - p / 100, 10**-x_max))) / x_max * plot_w

    def y_of(seconds: float) -> float:
        frac = (math.log10(max(seconds, y_lo)) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo))
        return top + plot_h * (1 - frac)

    def label(seconds: float) -> str:
        return f"{seconds:g} s" if seconds >= 1 else f"{seconds * 1000:g} ms"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="15">{title}</text>',
    ]
    decade = y_lo
    while decade <= y_hi * 1.0001:
        y = y_of(decade)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label(decade)}</text>')
        decade *= 10
    for p, text in ((0, "p0"), (50, "p50"), (90, "p90"), (95, "p95"), (99, "p99"), (99.9, "p99.9")):
        x = x_of(p)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{text}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h + 32}" text-anchor="middle">percentile</text>')
    y = y_of(target)
    out.append(
        f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#c00" stroke-dasharray="6 4"/>'
    )
    out.append(
        f'<text x="{left + 6}" y="{y - 5:.1f}" fill="#c00">target: p99 paid→delivered &lt; {label(target)}</text>'
    )
    for n, line in enumerate(series):
        ordered = sorted(line.values)
        if not ordered:
            continue
        points: list[str] = []
        for i, v in enumerate(ordered):
            if 100 * i / len(ordered) <= 99.9:
                point = f"{x_of(100 * i / len(ordered)):.0f},{y_of(v):.0f}"
                if not points or point != points[-1]:  # one point per pixel is plenty
                    points.append(point)
        points.append(f"{x_of(99.9):.0f},{y_of(ordered[-1]):.0f}")
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        style = f'fill="none" stroke="{line.colour}" stroke-width="2"{dash}'
        out.append(f'<polyline {style} points="{" ".join(points)}"/>')
        legend_y = legend_top + 20 * n
        out.append(f'<line x1="{left}" y1="{legend_y - 4}" x2="{left + 28}" y2="{legend_y - 4}" {style}/>')
        s = summary(line.values)
        out.append(
            f'<text x="{left + 36}" y="{legend_y}">{line.name}: p50 {ms(s["p50"])}, p95 {ms(s["p95"])}, '
            f"p99 {ms(s['p99'])}, max {ms(s['max'])} (n={s['n']})</text>"
        )
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


# -- main --------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="buyer arrivals per second (default 20)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of arrivals (default 60)")
    parser.add_argument("--buyers", type=int, default=100, help="concurrent buyer threads at most (default 100)")
    parser.add_argument(
        "--arrivals",
        choices=["uniform", "poisson"],
        default="uniform",
        help="evenly spaced (default) or Poisson arrivals",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of Poisson arrivals")
    parser.add_argument(
        "--minimal",
        action="store_true",
        help="skip what the server need not see: the sandbox page and the redirects after Pay (3 requests fewer)",
    )
    parser.add_argument(
        "--pay-on-order-page",
        action="store_true",
        help="place the order without choosing how to pay, then pay from the order page (2 requests more)",
    )
    parser.add_argument("--codes", type=int, default=None, help="bench codes to seed (default rate×duration×1.2)")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes (default 4)")
    parser.add_argument("--web-threads", type=int, default=1, help="threads per gunicorn worker (>1: gthread)")
    parser.add_argument("--celery-concurrency", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument("--celery-pool", default="prefork", choices=["prefork", "threads", "solo"])
    parser.add_argument("--conn-max-age", type=int, default=60, help="DB_CONN_MAX_AGE of the stack (default 60)")
    parser.add_argument("--max-unpaid-orders", type=int, default=100000)
    parser.add_argument(
        "--settings",
        default="kameng.settings",
        help="DJANGO_SETTINGS_MODULE of the stack, to try a settings change without editing the app "
        "(a module on PYTHONPATH that does `from kameng.settings import *` and overrides)",
    )
    parser.add_argument("--warmup", type=int, default=8, help="unmeasured orders placed before the run")
    parser.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout per request, seconds")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the last deliveries")
    parser.add_argument("--target-p99", type=float, default=2.0, help="p99 paid→delivered target, seconds")
    parser.add_argument(
        "--pg-log-min-duration",
        type=int,
        default=None,
        metavar="MS",
        help="log statements slower than MS to postgres/postgres.log in the scratch dir",
    )
    parser.add_argument(
        "--pg-stats", action="store_true", help="load pg_stat_statements and print the costliest statements"
    )
    parser.add_argument("--svg", type=Path, default=None, help="write a latency percentile chart here")
    parser.add_argument("--json", type=Path, default=None, help="write the raw per-order numbers here")
    parser.add_argument(
        "--chart", type=Path, default=None, help="no run: draw the percentile chart of the --json files given"
    )
    parser.add_argument(
        "runs", nargs="*", type=Path, help="with --chart: --json files of earlier runs, each FILE or FILE=LABEL"
    )
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="after the report, keep the stack up until Ctrl-C")
    return parser.parse_args(argv)


def code_version() -> str:
    """The commit under test ("-dirty": with uncommitted changes), for the record."""
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"


def draw_chart(path: Path, runs: list[Path], *, target: float) -> int:
    """The chart of docs/PERFORMANCE.md, from the --json files of several runs."""
    series: list[Series] = []
    for n, run_file in enumerate(runs):
        # FILE or FILE=LABEL: the label names the run in the legend (default: its rate).
        path_text, _, label = str(run_file).partition("=")
        run = json.loads(Path(path_text).read_text())
        rate, colour = label or f"{run['rate']:g} orders/s", COLOURS[n % len(COLOURS)]
        served = [o["paid_to_delivered"] for o in run["orders"] if o["paid_to_delivered"] is not None]
        waited = [o["checkout"] for o in run["orders"] if o["checkout"] is not None]
        series.append(Series(f"paid→delivered @ {rate} (server)", served, colour))
        series.append(Series(f"checkout, arrival→paid @ {rate} (client)", waited, colour, dashed=True))
    write_svg(path, series, target=target, title=f"Checkout under load on {os.cpu_count()} cores (bench/checkout.py)")
    print(f"chart written to {path}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.chart:
        return draw_chart(args.chart, args.runs, target=args.target_p99)
    codes = args.codes if args.codes is not None else math.ceil(args.rate * args.duration * 1.2) + args.warmup
    scratch = args.dir.resolve() if args.dir else Path(tempfile.mkdtemp(prefix="kameng-checkout-"))
    scratch.mkdir(parents=True, exist_ok=True)
    scratch.chmod(0o755)  # as root, the postgres user must be able to enter it
    stack = Stack(scratch, args)
    stop = threading.Event()

    def terminate(*_):
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)  # also when started in the background, where SIGINT is ignored
    run_id = time.strftime("%H%M%S")
    print(f"scratch dir {scratch}; code {code_version()}; load average {os.getloadavg()[0]:.2f}")
    try:
        t = time.monotonic()
        stack.start()
        setup_django(stack.env)
        sku_id = seed_bench_product(codes=codes, run_id=run_id)
        stack.spawn()
        stack.wait_ready()
        print(
            f"stack up in {time.monotonic() - t:.1f}s: gunicorn {args.web_workers}×{args.web_threads} "
            f"on :{stack.web_port}, celery {args.celery_pool}×{args.celery_concurrency}, {codes} bench codes"
        )

        if args.warmup:
            flows, _, _ = drive(
                port=stack.web_port,
                rate=50,
                duration=args.warmup / 50,
                buyers=args.warmup,
                arrivals="uniform",
                run_id=run_id,
                tag="warm",
                timeout=args.timeout,
                seed=0,
                stop=stop,
                minimal=args.minimal,
                pay_on_order_page=args.pay_on_order_page,
            )
            failed = [f for f in flows if f.error]
            if failed:
                print(f"warm-up failed: {failed[0].error}", file=sys.stderr)
                return 2
            wait_delivered(run_id=run_id, tag="warm", timeout=30)

        print(
            f"driving {round(args.rate * args.duration)} buyers: {args.rate:g}/s ({args.arrivals}) for "
            f"{args.duration:g}s, up to {args.buyers} at once …",
            flush=True,
        )
        if args.pg_stats:
            stack.psql("SELECT pg_stat_statements_reset()")
        roots = stack.roots()
        cpu_before, wall_before = tree_cpu_seconds(roots), time.monotonic()
        flows, first_arrival, last_arrival = drive(
            port=stack.web_port,
            rate=args.rate,
            duration=args.duration,
            buyers=args.buyers,
            arrivals=args.arrivals,
            run_id=run_id,
            tag="bench",
            timeout=args.timeout,
            seed=args.seed,
            stop=stop,
            minimal=args.minimal,
            pay_on_order_page=args.pay_on_order_page,
        )
        cpu_after, wall_after = tree_cpu_seconds(roots), time.monotonic()
        drained = wait_delivered(run_id=run_id, tag="bench", timeout=args.drain)
        crashed = stack.exited()
        if args.pg_stats:
            stack.print_pg_stats(len(flows))
        checked = check_database(run_id=run_id, tag="bench", sku_id=sku_id)
        return report(
            args,
            flows,
            checked,
            first_arrival,
            last_arrival,
            drained,
            crashed,
            cpu_before,
            cpu_after,
            wall_after - wall_before,
            scratch,
        )
    except KeyboardInterrupt:
        print("interrupted: stopping the stack", file=sys.stderr)
        return 130
    except (ServiceError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.decode(errors="replace")[-2000:] if getattr(exc, "stderr", None) else ""
        print(f"cannot run the stack: {exc}\n{detail}", file=sys.stderr)
        return 2
    finally:
        stop.set()
        if args.keep and stack.processes:
            print(
                f"\n--keep: http://127.0.0.1:{stack.web_port}/  {stack.env.get('DATABASE_URL')}  "
                f"{stack.env.get('REDIS_URL')}\nlogs in {scratch}; Ctrl-C stops the stack.",
                flush=True,
            )
            try:
                while not stack.exited():
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave half a stack behind
            signal.signal(sig, signal.SIG_IGN)
        stack.stop()
        if not args.keep and not args.dir:
            shutil.rmtree(scratch, ignore_errors=True)


def report(
    args,
    flows: list[Flow],
    checked: Checked,
    first_arrival: float,
    last_arrival: float,
    drained: float,
    crashed: list[str],
    cpu_before: dict,
    cpu_after: dict,
    load_wall: float,
    scratch: Path,
) -> int:
    expected = round(args.rate * args.duration)
    failed = [f for f in flows if f.error]
    orders = checked.orders
    latency = [(o["delivered_at"] - o["paid_at"]).total_seconds() for o in orders if o["delivered_at"] and o["paid_at"]]
    ok_flows = [f for f in flows if not f.error]
    checkout = [f.paid - f.scheduled for f in ok_flows]
    lag = [f.started - f.scheduled for f in flows]
    # Sustained rate: deliveries per second between the first and the last delivery. A stack that keeps
    # up delivers at the arrival rate, shifted by its latency; one that falls behind stretches the span.
    delivered_times = sorted(o["delivered_at"].timestamp() for o in orders if o["delivered_at"])
    window = delivered_times[-1] - delivered_times[0] if len(delivered_times) > 1 else math.nan
    achieved = (len(delivered_times) - 1) / window if len(delivered_times) > 1 and window > 0 else 0.0
    not_delivered = [o["number"] for o in orders if o["status"] != "delivered"]
    errors = len(failed) + len(not_delivered) + checked.wrong_code_count + (expected - len(flows)) + len(crashed)
    double = checked.double_sold + checked.double_linked + (checked.sold_vs_links[0] != checked.sold_vs_links[1])

    lat = summary(latency)
    print("\n== Checkout under load ==")
    print(
        f"buyers scheduled {expected}, flows finished {len(flows)}, failed {len(failed)}; "
        f"HTTP requests {sum(f.requests for f in flows)}"
    )
    print(
        f"orders in the database {len(orders)}: {checked.status_counts}; paid {checked.paid}, "
        f"delivered {checked.delivered}; last delivery {drained:.1f}s after the last buyer finished"
    )
    print(
        f"orders/s: offered {expected / (args.duration or 1):.2f}, achieved {achieved:.2f} "
        f"(deliveries per second between the first and the last delivery, {window:.1f}s apart)"
    )
    print_latency("paid→delivered", latency, "server: Order.delivered_at − paid_at", width=16)
    # Requests up to the payment's confirmation: product, add, checkout form, place order, [order page,
    # start payment,] [sandbox page,] pay.
    requests = 6 + 2 * args.pay_on_order_page - args.minimal
    print_latency("client checkout", checkout, f"arrival → payment confirmed, {requests} requests", width=16)
    for step in (step for step in STEPS if any(step in f.steps for f in ok_flows)):
        print_latency(f"  {step}", [f.steps[step] for f in ok_flows])
    print_latency("  start lag", lag, "waiting for a free buyer thread")
    print("per 10 s of arrivals (by paid_at): paid, p99 paid→delivered")
    buckets: dict[int, list[float]] = {}
    for o in orders:
        if o["paid_at"] and o["delivered_at"]:
            key = int((o["paid_at"].timestamp() - first_arrival) // 10)
            buckets.setdefault(key, []).append((o["delivered_at"] - o["paid_at"]).total_seconds())
    for key in sorted(buckets):
        print(f"  {key * 10:>4}–{key * 10 + 10:<4}s  {len(buckets[key]):>5}  {ms(percentile(buckets[key], 99)):>8}")
    print(
        f"CPU during the load phase ({load_wall:.0f} s): cores busy on average (the machine has "
        f"{os.cpu_count()}), and CPU ms per order"
    )
    per_order = 0.0
    for name in [*(k for k in cpu_after if not k.startswith("_"))]:
        used = cpu_after[name] - cpu_before[name]
        per_order += used / max(len(flows), 1)
        print(f"  {name:<13} {used / load_wall:5.2f}  {used / max(len(flows), 1) * 1000:6.1f} ms")
    print(
        f"  {'all of it':<13} {'':5}  {per_order * 1000:6.1f} ms   -> CPU-bound ceiling ≈ "
        f"{(os.cpu_count() or 1) / per_order if per_order else math.nan:.1f} orders/s on this machine"
    )
    ours = sum(cpu_after[k] - cpu_before[k] for k in cpu_after if not k.startswith("_")) / load_wall
    busy = (cpu_after["_machine_busy"] - cpu_before["_machine_busy"]) / max(
        cpu_after["_machine_all"] - cpu_before["_machine_all"], 1e-9
    )
    others = max(0.0, busy * (os.cpu_count() or 1) - ours)
    print(f"  other processes {others:4.2f}   (not this bench: anything else running on the machine)")
    print(f"  machine busy  {busy * 100:5.1f}%   load average at the end {os.getloadavg()[0]:.2f}")
    if others > 0.2:
        print(f"WARNING: other processes used {others:.2f} cores during the run: the figures are not clean")
    print(
        f"errors {errors}: failed flows {len(failed)}, not delivered {len(not_delivered)}, "
        f"wrong code count {checked.wrong_code_count}, not run {expected - len(flows)}, crashed {crashed or 0}"
    )
    reasons: dict[str, int] = {}
    for f in failed:
        key = f"{f.error.step}: {f.error.reason[:120]}"
        reasons[key] = reasons.get(key, 0) + 1
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {n:>5} × {reason}")
    print(
        f"double-sold codes {double}: times_sold>1 {checked.double_sold}, code in two delivered links "
        f"{checked.double_linked}, sold codes/delivered links of the bench SKU {checked.sold_vs_links}"
    )

    if args.svg:
        write_svg(
            args.svg,
            [
                Series("paid→delivered (server)", latency, COLOURS[0]),
                Series("checkout, arrival→paid (client)", checkout, COLOURS[0], dashed=True),
            ],
            target=args.target_p99,
            title=f"Checkout under load: {args.rate:g} orders/s for {args.duration:g} s, {os.cpu_count()} cores",
        )
        print(f"chart written to {args.svg}")
    if args.json:
        client = {f.number: f for f in ok_flows}
        run = {
            "rate": args.rate,
            "duration": args.duration,
            "args": {k: str(v) for k, v in vars(args).items()},
            "orders": [
                {
                    "number": o["number"],
                    "status": o["status"],
                    "paid_to_delivered": (
                        (o["delivered_at"] - o["paid_at"]).total_seconds()
                        if o["delivered_at"] and o["paid_at"]
                        else None
                    ),
                    "checkout": client[o["number"]].paid - client[o["number"]].scheduled
                    if o["number"] in client
                    else None,
                    "steps": client[o["number"]].steps if o["number"] in client else None,
                }
                for o in orders
            ],
        }
        args.json.write_text(json.dumps(run, indent=1))
    met = (
        errors == 0
        and double == 0
        and checked.paid == checked.delivered == expected
        and lat["p99"] < args.target_p99
        and achieved >= 0.95 * args.rate
    )
    print(
        f"target (p99 paid→delivered < {args.target_p99:g}s at {args.rate:g}/s, no errors, no double sale): "
        f"{'MET' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
