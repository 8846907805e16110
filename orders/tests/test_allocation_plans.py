"""The stock statements of a checkout and a product page stay cheap however big the stock is.

A SKU usually holds thousands of codes (an import is 100,000). A statement that gathers all of them
— a bitmap over every for-sale code, then a sort or a full count — costs a checkout tens of
milliseconds at that size (bench/checkout.py --codes 100000; docs/PERFORMANCE.md). These tests read
PostgreSQL's plans for the statements the code really sends (captured, then EXPLAINed) and check
that each can walk an index in the order it needs and stop early: no Sort node, a partial index.

The test tables are small, so PostgreSQL would rightly pick a sequential scan (or sort a handful of
rows) here; sequential scans, bitmap scans and sorts are switched off for the EXPLAIN, which leaves
the question "can an index answer this statement in order?" — the one that decides the cost on a
big table. The negative control shows the
planner answering no for the single OR-query this replaced.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog import selectors
from catalog.models import CardCode
from orders import services
from orders.tests.conftest import make_sku

pytestmark = pytest.mark.django_db


def plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")  # a sort only where no index gives the order
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def captured(queries, marker: str) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if marker in q["sql"]]


def test_taking_codes_walks_the_partial_indexes_in_order(demo_shop):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=30)
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            taken = services.take_codes(sku=sku, quantity=3, now=timezone.now())
        assert len(taken) == 3
        expired_sql, available_sql = captured(queries, "FOR UPDATE SKIP LOCKED")
        expired_plan, available_plan = plan(expired_sql), plan(available_sql)
    assert "cardcode_reserved_until" in expired_plan and "Sort" not in expired_plan, expired_plan
    assert "cardcode_available" in available_plan and "Sort" not in available_plan, available_plan
    assert "Limit" in available_plan


def test_negative_control_the_or_query_cannot_stop_early(demo_shop):
    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=30)
    with transaction.atomic():
        query = (
            CardCode.objects.select_for_update(skip_locked=True)
            .filter(selectors.for_sale_q(now=timezone.now()), sku=sku)
            .order_by("pk")
            .values_list("pk", flat=True)[:1]
        )
        with CaptureQueriesContext(connection) as queries:
            list(query)
        old_plan = plan(captured(queries, "FOR UPDATE SKIP LOCKED")[0])
    # Either every for-sale code is gathered and sorted, or the primary key is walked past every
    # code of every SKU: neither reads the SKU's available codes in order through an index of them.
    assert "cardcode_available" not in old_plan, old_plan


def test_the_stock_count_adds_expired_reservations_and_stops_at_the_cap(demo_shop):
    from datetime import timedelta

    from catalog.models import Sku
    from orders.tests.conftest import place

    sku = make_sku(demo_shop.products["steam-wallet"], codes_count=8)
    held = place(sku, 2).order  # 2 codes held by an unpaid order ...
    stale = place(sku, 3).order  # ... and 3 by one whose deadline passed: for sale again
    past = timezone.now() - timedelta(minutes=1)
    CardCode.objects.filter(order_links__item__order=stale).update(reserved_until=past)
    assert held.status == "pending_payment"

    def count(cap):
        [row] = Sku.objects.filter(pk=sku.pk).annotate(n=selectors.for_sale_count(cap=cap))
        return row.n

    assert count(None) == 3 + 3  # 3 available + 3 expired reservations, not the 2 held
    assert count(2) == 2 + 2  # each part stops at the cap: "at least the cap" is all a page needs
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            count(1000)
        counted = plan(queries.captured_queries[0]["sql"])
    assert counted.count("Limit") == 2, counted
    assert "cardcode_available" in counted and "cardcode_reserved_until" in counted, counted
