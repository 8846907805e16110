"""Where one buyer's web CPU goes: the checkout bench's buyer flow, in-process, step by step.

bench/checkout.py measures the whole stack over HTTP; this script answers the next question — which
request, and which code inside it, costs the web tier its CPU. It starts PostgreSQL and Redis like
the checkout bench (same settings, same bench product), then runs the very same buyer flow
(``checkout.run_flow``) through Django's WSGI handler in this process, one buyer after another, and
reports the CPU time (``time.process_time``: this process only, so PostgreSQL's and Redis's work is
not in it) of every request, by step. Nothing consumes the Celery queue, so the last order page shows
"paid", not "delivered" — the delivery task is the worker's cost, not the web tier's.

    .venv/bin/python bench/profile_buyer.py                     # 200 buyers (after 20 warm-up ones)
    .venv/bin/python bench/profile_buyer.py --buyers 100 --profile 40
                                                                # plus cProfile's top functions
    .venv/bin/python bench/profile_buyer.py --production        # DEBUG off (see below)

``--production`` runs with DEBUG off, as production does. The sandbox provider exists only with DEBUG
on, so there the script loads the overlay ``bench/sandbox_settings.py`` (the shop's settings plus
``PAYMENT_SANDBOX_ENABLED = True``) — for measuring only; the shop itself refuses the sandbox
without DEBUG.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import checkout as bench  # noqa: E402

from kameng.localservices import PostgresServer, RedisServer  # noqa: E402


class WsgiResponse:
    def __init__(self, status: int, headers: list[tuple[str, str]]):
        self.status = status
        self._headers = headers

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self._headers if key.lower() == name.lower()]

    def __getitem__(self, name: str) -> str:
        found = self.get_all(name)
        return found[0] if found else None


class WsgiBrowser(bench.Browser):
    """bench.Browser, but each request goes straight into Django's WSGI handler in this process."""

    handler = None
    cpu: dict[str, list[float]] = {}
    step = "?"

    def __init__(self, port: int, source: str, timeout: float):
        super().__init__(port, source, timeout)

    def request(self, step, method, path, form=None, *, expect=200, follow=False):
        WsgiBrowser.step = step
        return super().request(step, method, path, form, expect=expect, follow=follow)

    def _send(self, method, path, form=None):
        body = urllib.parse.urlencode(form).encode() if form is not None else b""
        split = urllib.parse.urlsplit(path)
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": split.path,
            "QUERY_STRING": split.query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.port),
            "HTTP_HOST": f"127.0.0.1:{self.port}",
            "REMOTE_ADDR": self.source,
            "HTTP_USER_AGENT": "kameng-bench/1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)),
        }
        if form is not None:
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started: dict = {}

        def start_response(status, headers, exc_info=None):
            started["status"], started["headers"] = int(status.split()[0]), headers

        self.requests += 1
        before = time.process_time()
        result = self.handler(environ, start_response)
        content = b"".join(result)
        if hasattr(result, "close"):
            result.close()
        spent = time.process_time() - before
        key = WsgiBrowser.step if started["status"] < 300 or method == "POST" else WsgiBrowser.step + " (redirect)"
        self.cpu.setdefault(key, []).append(spent)
        response = WsgiResponse(started["status"], started["headers"])
        for header in response.get_all("Set-Cookie"):
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response.status, response, content


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--profile", type=int, default=0, help="cProfile this many buyers and print the top")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--production", action="store_true", help="DEBUG off (sandbox enabled for the bench)")
    parser.add_argument("--pay-on-order-page", action="store_true", help="the 10-request flow (see checkout.py)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="kameng-profile-"))
    scratch.chmod(0o755)  # as root, the postgres user must be able to enter it
    postgres, redis = PostgresServer(scratch / "postgres"), RedisServer(scratch / "redis")
    try:
        env = {
            **os.environ,
            "KAMENG_IGNORE_ENV_FILE": "1",
            "DJANGO_SETTINGS_MODULE": "bench.sandbox_settings" if args.production else "kameng.settings",
            "DEBUG": "false" if args.production else "true",
            "DATABASE_URL": postgres.start(),
            "REDIS_URL": redis.start(),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CARD_CODE_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "SITE_URL": "http://127.0.0.1:8000",
            # Console mail as measured so far; production settings refuse it, so there the overlay
            # (bench/sandbox_settings.py) swaps it in for this stand-in.
            "EMAIL_URL": "smtp://127.0.0.1:25" if args.production else "consolemail://",
            "ALLOWED_HOSTS": "127.0.0.1",
            "MAX_UNPAID_ORDERS": "100000",
            "DB_CONN_MAX_AGE": "60",
            "SECURE_SSL_REDIRECT": "false",
            "STATIC_ROOT": str(scratch / "static"),
        }
        commands = [["migrate", "--no-input"], ["seed_demo"]]
        if args.production:  # WhiteNoise serves hashed names from the manifest
            commands.append(["collectstatic", "--no-input"])
        for command in commands:
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
        os.environ.update(env)
        import django

        django.setup()
        from django.core.handlers.wsgi import WSGIHandler

        run_id = secrets.token_hex(3)
        bench.seed_bench_product(codes=args.buyers + args.warmup + args.profile + 10, run_id=run_id)
        WsgiBrowser.handler = WSGIHandler()
        bench.Browser = WsgiBrowser

        def buyers(count: int, offset: int) -> None:
            for index in range(offset, offset + count):
                flow = bench.run_flow(
                    bench.Flow(index=index, scheduled=time.monotonic()), port=8000, run_id=run_id, tag="prof",
                    timeout=30, pay_on_order_page=args.pay_on_order_page,
                )  # fmt: skip
                if flow.error:
                    raise SystemExit(f"buyer {index}: {flow.error}")

        buyers(args.warmup, 0)
        WsgiBrowser.cpu.clear()
        started = time.process_time()
        buyers(args.buyers, args.warmup)
        total = time.process_time() - started
        print(f"{args.buyers} buyers, DEBUG={'off' if args.production else 'on'}: "
              f"{total / args.buyers * 1000:.1f} ms of web CPU per buyer (this process)")  # fmt: skip
        print(f"{'step':<28} {'requests':>8} {'median ms':>10} {'mean ms':>8}")
        for step, values in WsgiBrowser.cpu.items():
            print(f"{step:<28} {len(values) / args.buyers:8.1f} {statistics.median(values) * 1000:10.2f} "
                  f"{statistics.fmean(values) * 1000:8.2f}")  # fmt: skip
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            buyers(args.profile, args.warmup + args.buyers)
            profiler.disable()
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats(args.sort).print_stats(args.top)
            print(stream.getvalue())
    finally:
        redis.stop()
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
