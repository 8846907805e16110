"""The spending leaderboard at 50,000 buyers: how long a board takes to compute, to read, and a page.

Starts PostgreSQL and Redis in a scratch directory (kameng.localservices, like the other benches),
migrates, then seeds ``--users`` buyers (default 50,000) and ``--orders-per-user`` goods orders
each on average (default 4: 200,000 orders), paid at random times over the last ``--days`` (400)
days; 8% of them partly or fully refunded, 5% wallet top-ups, 5% never paid (pending, expired), 3%
of the buyers hidden from the board. Then it times, each ``--repeat`` times (median and max):

* ``compute`` of each period (week, month, all time): the aggregate over the orders plus the names
  of the listed buyers — what the beat task does every 5 minutes;
* ``board`` read from the cache (what a page does);
* ``standing`` of one buyer (their own spend: one query on their orders);
* the whole page ``/me/leaderboard/`` through Django's test client, with its query count.

    .venv/bin/python bench/leaderboard.py                  # 50,000 buyers, 200,000 orders
    .venv/bin/python bench/leaderboard.py --users 5000     # a quick run
    .venv/bin/python bench/leaderboard.py --explain        # plus EXPLAIN ANALYZE of the all-time query

Needs the Debian packages postgresql and redis-server.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kameng.localservices import PostgresServer, RedisServer  # noqa: E402


def timed(func, repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), max(times), result


def seed(*, users: int, per_user: int, days: int, rng: random.Random) -> None:
    import datetime

    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import User
    from orders.models import Order

    password = make_password(None)
    now = timezone.now()
    people = []
    for n in range(users):
        nickname = f"买家{n}" if n % 3 else ""
        people.append(
            User(email=f"buyer{n}@example.com", nickname=nickname, password=password,
                 show_on_leaderboard=rng.random() >= 0.03)
        )  # fmt: skip
    User.objects.bulk_create(people, batch_size=5000)
    ids = list(User.objects.filter(email__startswith="buyer").values_list("pk", flat=True))
    orders = []
    for number in range(1, users * per_user + 1):
        buyer = rng.choice(ids)
        total = rng.choice([1000, 2000, 4850, 9650, 19200, 50000, 100000])
        paid_at = now - datetime.timedelta(seconds=rng.randrange(days * 86400))
        roll = rng.random()
        kind, status, refunded = Order.Kind.GOODS, Order.Status.DELIVERED, 0
        if roll < 0.05:
            kind = Order.Kind.TOP_UP
        elif roll < 0.10:
            status, paid_at = rng.choice([Order.Status.PENDING_PAYMENT, Order.Status.EXPIRED]), None
        elif roll < 0.18:
            status, refunded = Order.Status.REFUNDED, rng.choice([total, total // 2])
        orders.append(
            Order(number=f"B{number:012d}", kind=kind, buyer_id=buyer, email="b@example.com", status=status,
                  subtotal_fen=total, total_fen=total, refunded_fen=refunded, reserved_until=paid_at or now,
                  idempotency_key=f"bench-{number}", paid_at=paid_at)
        )  # fmt: skip
        if len(orders) == 10000:
            Order.objects.bulk_create(orders)
            orders = []
    Order.objects.bulk_create(orders)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--orders-per-user", type=int, default=4)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="kameng-leaderboard-"))
    scratch.chmod(0o755)  # as root, the postgres user must be able to enter it
    postgres, redis = PostgresServer(scratch / "postgres"), RedisServer(scratch / "redis")
    try:
        env = {
            **os.environ,
            "KAMENG_IGNORE_ENV_FILE": "1",
            "DJANGO_SETTINGS_MODULE": "kameng.settings",
            "DEBUG": "true",
            "DATABASE_URL": postgres.start(),
            "REDIS_URL": redis.start(),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CARD_CODE_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "EMAIL_URL": "consolemail://",
        }
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from accounts.models import User
        from orders import leaderboard
        from orders.models import Order

        started = time.perf_counter()
        seed(users=args.users, per_user=args.orders_per_user, days=args.days, rng=random.Random(args.seed))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"seeded {User.objects.count():,} users and {Order.objects.count():,} orders "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip

        print(f"{'step':<34} {'median ms':>10} {'max ms':>8}  result")
        for period in leaderboard.PERIODS:
            median, worst, board = timed(lambda p=period: leaderboard.compute(p), args.repeat)
            print(f"{'compute ' + period:<34} {median * 1000:10.1f} {worst * 1000:8.1f}  "
                  f"{board.ranked:,} ranked, top {len(board.top)}, {len(board.totals):,} bytes")  # fmt: skip
        median, worst, _ = timed(leaderboard.refresh_all, args.repeat)
        print(f"{'refresh_all (the beat task)':<34} {median * 1000:10.1f} {worst * 1000:8.1f}")
        median, worst, board = timed(lambda: leaderboard.board(leaderboard.MONTH), args.repeat * 4)
        print(f"{'board month, from the cache':<34} {median * 1000:10.1f} {worst * 1000:8.1f}")
        someone = User.objects.get(email="buyer1@example.com")
        median, worst, standing = timed(lambda: leaderboard.standing(user=someone, board=board), args.repeat * 4)
        print(f"{'standing of one buyer':<34} {median * 1000:10.1f} {worst * 1000:8.1f}  "
              f"rank {standing.rank} of {board.ranked:,}")  # fmt: skip

        client = Client()
        client.force_login(someone)
        client.get("/me/leaderboard/")

        def page():
            with CaptureQueriesContext(connection) as queries:
                assert client.get("/me/leaderboard/").status_code == 200
            return len(queries)

        median, worst, count = timed(page, args.repeat * 4)
        print(f"{'page /me/leaderboard/ (cached)':<34} {median * 1000:10.1f} {worst * 1000:8.1f}  {count} queries")

        if args.explain:
            query = (
                Order.objects.filter(leaderboard.spending_q(since=None), buyer__is_active=True,
                                     buyer__show_on_leaderboard=True)
                .order_by().values("buyer_id").annotate(spent=leaderboard.SPENT).filter(spent__gt=0)
                .values_list("buyer_id", "spent")
            )  # fmt: skip
            print(query.explain(analyze=True))
    finally:
        redis.stop()
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
