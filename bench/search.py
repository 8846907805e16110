"""Product search at 10,000 products: how long a search page takes, with its query count.

Starts PostgreSQL and Redis in a scratch directory (kameng.localservices, like the other benches),
migrates (the pg_trgm extension and the GIN trigram index come from migration catalog 0008), seeds
the demo shop plus ``--products`` products (default 10,000) with names drawn from a game-card /
membership / software vocabulary, 3 SKUs each and ``--codes`` codes per SKU (stand-in payloads: the
search never decrypts), some sold in the last 30 days; the search texts are built by
``catalog.search.refresh_products`` (what saves do one product at a time). Then it times each
search (``--repeat`` times: median and max) through Django's test client — the whole page, as a
shopper gets it — and prints the results and the queries of each.

    .venv/bin/python bench/search.py                     # 10,000 products
    .venv/bin/python bench/search.py --products 1000     # a quick run
    .venv/bin/python bench/search.py --explain           # plus EXPLAIN ANALYZE of the main query

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

BRANDS = ["腾讯", "网易", "Steam", "王者荣耀", "原神", "和平精英", "爱奇艺", "优酷", "腾讯视频", "QQ音乐", "网易云音乐",
          "Office", "Windows", "Adobe", "百度网盘", "哔哩哔哩", "英雄联盟", "梦幻西游", "魔兽世界", "Xbox"]  # fmt: skip
KINDS = ["点卡", "充值卡", "点券", "会员", "月卡", "激活码", "兑换码", "礼品卡"]
SEARCHES = [
    ("点卡", {}),
    ("dk", {}),
    ("steam", {}),
    ("stean", {}),  # a typo
    ("wangyi", {}),
    ("会员", {"sort": "price"}),
    ("点卡", {"sort": "sales", "in_stock": "1", "min": "5", "max": "200"}),
    ("原神 点券", {}),
    ("zzzz不存在", {}),
]


def timed(func, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), max(times), result


def seed(*, products: int, codes: int, rng: random.Random) -> None:
    import datetime

    from django.utils import timezone

    from catalog import search
    from catalog.demo import seed_demo
    from catalog.models import CardCode, Product, Sku

    shop = seed_demo(with_users=False, with_codes=False)
    categories = list(shop.categories.values())
    now = timezone.now()
    rows = []
    for n in range(products):
        brand, kind = rng.choice(BRANDS), rng.choice(KINDS)
        category = shop.categories["game-cards"] if kind in ("点卡", "点券", "充值卡") else rng.choice(categories)
        rows.append(Product(merchant=shop.merchant, category=category, title=f"{brand}{kind} {n}",
                            slug=f"bench-{n}", status=Product.Status.LISTED, sort_order=n))  # fmt: skip
    made = Product.objects.bulk_create(rows, batch_size=2000)
    skus = Sku.objects.bulk_create(
        (Sku(product=p, label=f"{v}元", price_fen=v * 97, face_value_fen=v * 100) for p in made for v in (10, 50, 100)),
        batch_size=5000,
    )
    code_rows = []
    for sku in skus:
        for i in range(codes):
            sold = rng.random() < 0.2
            code_rows.append(CardCode(
                sku=sku, payload="bench", fingerprint=f"{sku.pk}-{i}", hint="BENCH****",
                status=CardCode.Status.SOLD if sold else CardCode.Status.AVAILABLE, times_sold=1 if sold else 0,
                sold_at=now - datetime.timedelta(days=rng.randrange(30)) if sold else None,
            ))  # fmt: skip
    CardCode.objects.bulk_create(code_rows, batch_size=10000)
    search.refresh_products(Product.objects.all())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--codes", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--no-jit", action="store_true", help="PostgreSQL's JIT off for the session (PGOPTIONS)")
    args = parser.parse_args()
    if args.no_jit:
        os.environ["PGOPTIONS"] = "-c jit=off"

    scratch = Path(tempfile.mkdtemp(prefix="kameng-search-"))
    scratch.chmod(0o755)  # as root, the postgres user must be able to enter it
    postgres, redis = PostgresServer(scratch / "postgres"), RedisServer(scratch / "redis")
    try:
        env = {
            **os.environ,
            "KAMENG_IGNORE_ENV_FILE": "1",
            "DJANGO_SETTINGS_MODULE": "kameng.settings",
            "DEBUG": "true",  # production settings need the real gateways; DEBUG costs little here (no templates debug)
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
        from django.test.utils import CaptureQueriesContext, setup_test_environment

        from catalog import selectors
        from catalog.models import CardCode, Product

        started = time.perf_counter()
        seed(products=args.products, codes=args.codes, rng=random.Random(args.seed))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"seeded {Product.objects.count():,} products, {CardCode.objects.count():,} codes "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip

        setup_test_environment()  # the test client then hands back each response's context
        client = Client()
        print(f"{'search':<44} {'median ms':>10} {'max ms':>8} {'found':>7} {'queries':>8}")
        for query, extra in SEARCHES:
            params = {"q": query, **extra}
            client.get("/search/", params)  # warm the caches a page reads (promotions' snapshot)

            def page(params=params):
                with CaptureQueriesContext(connection) as queries:
                    response = client.get("/search/", params)
                    assert response.status_code == 200
                return response.context["page"].paginator.count, len(queries)

            median, worst, (found, count) = timed(page, args.repeat)
            label = " ".join(f"{k}={v}" for k, v in params.items())
            print(f"{label:<44} {median * 1000:10.1f} {worst * 1000:8.1f} {found:>7,} {count:>8}")
        if args.explain:
            page_query = selectors.search_products(query="点卡").values_list("pk", flat=True)[:24]
            print(page_query.explain(analyze=True))
    finally:
        redis.stop()
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
