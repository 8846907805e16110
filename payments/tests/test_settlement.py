"""Split settlement and the ledger, end to end through the sandbox provider (real orders)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from catalog import codes
from catalog import services as catalog_services
from catalog.models import Sku
from orders import services as order_services
from orders.models import Order
from payments import ledger, selectors, services, settlement, tasks
from payments.models import LedgerEntry, Refund, Settlement
from payments.providers.sandbox import SandboxProvider

pytestmark = pytest.mark.django_db(transaction=True)


def sku_of(product, price_fen: int, label: str) -> Sku:
    sku = Sku.objects.create(product=product, label=label, price_fen=price_fen, low_stock_threshold=0)
    catalog_services.add_codes(sku=sku, secrets=[codes.Secret(f"{label}-{i:03d}") for i in range(6)])
    return sku


def delivered_order(*lines: tuple[Sku, int]) -> Order:
    order = order_services.place_order(
        lines=[order_services.CartLine(sku_id=sku.pk, quantity=quantity) for sku, quantity in lines],
        email=f"{uuid.uuid4().hex[:8]}@example.com",
        idempotency_key=uuid.uuid4().hex,
    ).order
    payment, _ = services.start_payment(order=order, provider_name="sandbox")
    services.confirm_payment(
        out_trade_no=payment.out_trade_no, amount_fen=order.total_fen, gateway_trade_no=f"G{payment.pk}",
        provider="sandbox",
    )  # fmt: skip
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    return order


@pytest.fixture
def two_merchant_order(demo_shop):
    demo_shop.other_merchant.commission_rate = Decimal("0.0750")
    demo_shop.other_merchant.save(update_fields=["commission_rate"])
    ours = sku_of(demo_shop.products["steam-wallet"], 1999, "S1")
    theirs = sku_of(demo_shop.products["honor-of-kings"], 333, "S2")
    return delivered_order((ours, 2), (theirs, 3)), demo_shop


def refund(order: Order, amount_fen: int) -> Refund:
    payment = selectors.paying_payment(order)
    made = services.request_refund(payment=payment, amount_fen=amount_fen, reason=Refund.Reason.OPERATOR)
    made.refresh_from_db()
    assert made.status == Refund.Status.SUCCEEDED  # the sandbox refunds at once (eager Celery)
    return made


def assert_ledger_ok() -> None:
    assert [str(v) for v in selectors.violations()] == []
    call_command("check_ledger")


def test_delivered_order_is_split_per_merchant_and_settled_once(two_merchant_order):
    order, shop = two_merchant_order
    assert settlement.create_due_settlements() == 2
    assert settlement.create_due_settlements() == 0
    rows = {s.merchant_id: s for s in order.settlements.all()}
    ours, theirs = rows[shop.merchant.pk], rows[shop.other_merchant.pk]
    # 2 × 19.99 at 10% → fee 4.00 (399.8 rounds up); 3 × 3.33 at 7.5% → fee 0.75 (74.925 rounds down)
    assert (ours.gross_fen, ours.fee_fen, ours.merchant_fen) == (3998, 400, 3598)
    assert (theirs.gross_fen, theirs.fee_fen, theirs.merchant_fen) == (999, 75, 924)
    assert ledger.order_balances(order.pk) == {
        "buyer_paid": 4997, "platform_fee": 475, "unallocated": 0,
        f"merchant:{shop.merchant.pk}:pending": 3598, f"merchant:{shop.other_merchant.pk}:pending": 924,
    }  # fmt: skip
    assert settlement.execute_due_settlements() == {"settled": 2}
    assert settlement.execute_due_settlements() == {}
    assert settlement.settle(settlement_id=ours.pk) == "skipped"
    ours.refresh_from_db()
    assert ours.status == Settlement.Status.SETTLED and ours.split_fen == 3598
    assert selectors.merchant_totals(shop.merchant.pk)["settled"] == 3598
    assert LedgerEntry.objects.filter(kind="payout").count() == 4
    assert_ledger_ok()


def test_hold_period_keeps_money_frozen_until_due(two_merchant_order, settings):
    order, shop = two_merchant_order
    settings.SETTLEMENT_HOLD_DAYS = 7
    settlement.create_due_settlements()
    assert set(order.settlements.values_list("status", flat=True)) == {Settlement.Status.FROZEN}
    assert selectors.merchant_totals(shop.merchant.pk)["frozen"] == 3598
    assert settlement.execute_due_settlements() == {}
    Settlement.objects.filter(order=order).update(due_at=timezone.now() - timedelta(seconds=1))
    assert settlement.execute_due_settlements() == {"settled": 2}
    assert selectors.merchant_totals(shop.merchant.pk) == {"frozen": 0, "pending": 0, "settled": 3598, "reversed": 0}


def test_partial_then_full_refund_after_settlement_reverses_proportionally(two_merchant_order):
    order, shop = two_merchant_order
    settlement.create_due_settlements()
    settlement.execute_due_settlements()
    refund(order, 1001)
    rows = {s.merchant_id: s for s in order.settlements.all()}
    reversed_total = sum(s.reversed_fee_fen + s.reversed_merchant_fen for s in rows.values())
    assert reversed_total == 1001
    ours = rows[shop.merchant.pk]
    # 1001 × 3998 / 4997 = 800.88 → 801 for ours (fee 80: 801 × 400 / 3998 = 80.14), 200 for theirs
    assert (ours.reversed_fee_fen, ours.reversed_merchant_fen) == (80, 721)
    assert_ledger_ok()
    refund(order, 4997 - 1001)
    balances = ledger.order_balances(order.pk)
    assert balances["refund"] == 4997
    assert balances["platform_fee"] == 0
    assert balances[f"merchant:{shop.merchant.pk}:settled"] == 0
    assert all(s.reversed_merchant_fen == s.merchant_fen for s in order.settlements.all())
    assert_ledger_ok()


def test_refund_before_payout_reverses_pending_and_a_full_one_cancels_the_payout(two_merchant_order, settings):
    order, _shop = two_merchant_order
    settings.SETTLEMENT_HOLD_DAYS = 7
    refund(order, 4997)  # delivered, not split yet: the refund splits it first, then reverses it all
    assert set(order.settlements.values_list("status", flat=True)) == {Settlement.Status.REVERSED}
    Settlement.objects.filter(order=order).update(due_at=timezone.now() - timedelta(seconds=1))
    assert settlement.execute_due_settlements() == {}
    assert not LedgerEntry.objects.filter(kind="payout").exists()
    assert ledger.order_balances(order.pk)["platform_fee"] == 0
    assert_ledger_ok()


def test_duplicate_payment_is_refunded_from_unallocated_money(demo_shop):
    sku = sku_of(demo_shop.products["steam-wallet"], 1000, "D1")
    order = delivered_order((sku, 1))
    extra = services.Payment.objects.create(
        order=order, provider="sandbox", out_trade_no=f"PX{order.pk}", amount_fen=1000
    )
    outcome = services.confirm_payment(
        out_trade_no=extra.out_trade_no, amount_fen=1000, gateway_trade_no="GX", provider="sandbox"
    )
    assert outcome == services.Confirmation.DUPLICATE
    settlement.create_due_settlements()
    balances = ledger.order_balances(order.pk)
    assert balances["buyer_paid"] == 2000 and balances["refund"] == 1000 and balances["unallocated"] == 0
    assert balances["platform_fee"] == 100
    assert_ledger_ok()


class Refusing(SandboxProvider):
    calls = 0

    def split(self, *, payment, out_request_no, receivers):
        type(self).calls += 1
        from payments.providers import ProviderError

        raise ProviderError("ROYALTY_RECEIVER_NOT_BOUND")


def test_failed_settle_is_retried_with_back_off_then_alerts_operators(two_merchant_order, settings, monkeypatch):
    order, _shop = two_merchant_order
    settings.OPERATOR_EMAILS = ["ops@kameng.example"]
    settlement.create_due_settlements()
    from payments import providers

    monkeypatch.setitem(providers._ALL, "sandbox", Refusing)
    assert settlement.execute_due_settlements() == {"retry": 2}
    row = order.settlements.first()
    assert row.status == Settlement.Status.PENDING and row.attempts == 1 and row.next_attempt_at > timezone.now()
    assert settlement.execute_due_settlements() == {}  # backing off
    for _ in range(settlement.MAX_ATTEMPTS - 1):
        Settlement.objects.filter(order=order).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        settlement.execute_due_settlements()
    row.refresh_from_db()
    assert row.status == Settlement.Status.FAILED and "NOT_BOUND" in row.failure
    alerts = [m for m in mail.outbox if "settlement" in m.subject]
    assert (
        len(alerts) == 2
        and alerts[0].to == ["ops@kameng.example"]
        and row.out_request_no in alerts[0].subject + alerts[1].subject
    )
    assert not LedgerEntry.objects.filter(kind="payout").exists()
    assert_ledger_ok()


def test_a_claim_left_without_answer_is_sent_again_with_the_same_number(two_merchant_order, monkeypatch):
    order, _shop = two_merchant_order
    settlement.create_due_settlements()
    row = order.settlements.first()
    claimed = settlement._claim(row.pk)  # a worker claimed it and died before the gateway answered
    assert claimed.status == Settlement.Status.SETTLING
    assert settlement.settle(settlement_id=row.pk) == "skipped"
    Settlement.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    sent = []
    monkeypatch.setattr(SandboxProvider, "split", lambda self, **kw: sent.append(kw["out_request_no"]) or {})
    assert settlement.settle(settlement_id=row.pk) == "settled"
    assert sent == [row.out_request_no]
    row.refresh_from_db()
    assert row.attempts == 2 and row.split_fen == row.merchant_fen
    assert_ledger_ok()


def test_two_workers_racing_settle_pay_out_once(two_merchant_order, monkeypatch):
    order, _shop = two_merchant_order
    settlement.create_due_settlements()
    row = order.settlements.first()
    calls = []
    gate = threading.Barrier(2)

    def split(self, **kw):
        calls.append(kw["out_request_no"])
        return {}

    monkeypatch.setattr(SandboxProvider, "split", split)
    results = []

    def worker():
        try:
            gate.wait()
            results.append(settlement.settle(settlement_id=row.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["settled", "skipped"]
    assert calls == [row.out_request_no]
    assert LedgerEntry.objects.filter(kind="payout", reference=row.out_request_no).count() == 2
    assert_ledger_ok()


def test_check_ledger_names_the_first_violation(two_merchant_order):
    order, _shop = two_merchant_order
    settlement.create_due_settlements()
    call_command("check_ledger")
    LedgerEntry.objects.create(account=ledger.PLATFORM_FEE, order=order, kind="split", reference="forged", amount_fen=5)
    with pytest.raises(CommandError, match="posting_unbalanced: split forged"):
        call_command("check_ledger")


def test_periodic_settlement_tasks_are_scheduled_and_run():
    from django.conf import settings as django_settings

    from kameng.celery import app as celery_app

    names = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    ours = {"payments.tasks.create_due_settlements", "payments.tasks.execute_due_settlements"}
    assert ours <= names and ours <= set(celery_app.tasks.keys())
    assert tasks.create_due_settlements.apply().result == 0
    assert tasks.execute_due_settlements.apply().result == {}


def test_admin_settlements_are_read_only_and_merchants_see_only_their_own(
    two_merchant_order, client, operator, merchant_staff, password
):
    order, shop = two_merchant_order
    settlement.create_due_settlements()
    ours = order.settlements.get(merchant=shop.merchant)
    theirs = order.settlements.get(merchant=shop.other_merchant)
    client.login(email=operator.email, password=password)
    listing = client.get("/admin/payments/settlement/")
    assert ours.out_request_no in listing.text and theirs.out_request_no in listing.text
    assert "platform_fee" in client.get("/admin/payments/ledgerentry/").text
    assert client.post(f"/admin/payments/settlement/{ours.pk}/delete/").status_code == 403
    assert client.get("/admin/payments/ledgerentry/add/").status_code == 403
    client.logout()
    client.login(email=merchant_staff.email, password=password)
    listing = client.get("/admin/payments/settlement/")
    assert ours.out_request_no in listing.text and theirs.out_request_no not in listing.text
    assert client.get(f"/admin/payments/settlement/{theirs.pk}/change/").status_code == 404
    page = client.get(f"/admin/payments/settlement/{ours.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.text
    assert client.post(f"/admin/payments/settlement/{ours.pk}/delete/").status_code == 403
    lines = client.get("/admin/payments/ledgerentry/").text
    assert f"merchant:{shop.merchant.pk}:pending" in lines
    assert f"merchant:{shop.other_merchant.pk}:pending" not in lines and "platform_fee" not in lines


def _balance(client, **params):
    from django.urls import reverse

    return client.get(reverse("admin:payments_settlement_balance"), params)


def test_merchant_balance_page_totals_and_statement_add_up(
    two_merchant_order, client, merchant_staff, other_merchant_staff, password, settings
):
    order, shop = two_merchant_order
    settlement.create_due_settlements()
    settlement.execute_due_settlements()
    ours = order.settlements.get(merchant=shop.merchant)
    refund(order, 500)  # a partial refund after payout reverses part of each share
    ours.refresh_from_db()
    client.login(email=merchant_staff.email, password=password)

    page = _balance(client)

    assert page.status_code == 200
    totals = page.context["totals"]
    assert totals["settled"] == ledger.balance(ledger.merchant_settled(shop.merchant.pk))
    assert totals["reversed"] == ours.reversed_merchant_fen > 0
    entries = page.context["entries"]
    assert {entry.merchant_id for entry in entries} == {shop.merchant.pk}
    assert page.context["opening"] == 0
    assert page.context["closing"] == sum(e.amount_fen for e in entries) == ours.remaining_merchant_fen
    assert shop.other_merchant.name not in page.text
    # Another merchant's statement is not there for the asking.
    assert _balance(client, merchant=shop.other_merchant.pk).status_code == 404
    assert _balance(client, merchant="x").status_code == 404
    # Last month: nothing in it, the opening balance is the closing one.
    last = (timezone.localdate().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    empty = _balance(client, month=last)
    assert (empty.context["opening"], empty.context["closing"], empty.context["entries"]) == (0, 0, [])
    assert _balance(client, month="2026-13").status_code == 200  # an unknown month falls back, with a message


def test_merchant_statement_downloads_as_xlsx(two_merchant_order, client, merchant_staff, password):
    import io

    from openpyxl import load_workbook

    order, shop = two_merchant_order
    settlement.create_due_settlements()
    settlement.execute_due_settlements()
    client.login(email=merchant_staff.email, password=password)

    response = _balance(client, merchant=shop.merchant.pk, format="xlsx")

    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "no-store" in response["Cache-Control"]
    rows = list(load_workbook(io.BytesIO(b"".join(response.streaming_content))).active.iter_rows(values_only=True))
    lines = rows[3:-1]
    expected = list(
        LedgerEntry.objects.filter(merchant=shop.merchant)
        .order_by("created_at", "pk")
        .values_list("account", "amount_fen")
    )
    assert [(row[3], row[4]) for row in lines] == expected
    assert rows[-1][1] == sum(amount for _, amount in expected)
    assert all(row[1] == order.number for row in lines)


def test_operators_see_the_platforms_commission_and_what_is_unpaid(two_merchant_order, client, operator, password):
    order, shop = two_merchant_order
    settlement.create_due_settlements()
    client.login(email=operator.email, password=password)

    page = _balance(client)

    fee = sum(s.fee_fen for s in order.settlements.all())
    assert page.context["commission_in_period"] == fee == page.context["platform"]["platform_fee"]
    assert page.context["platform"]["unsettled"] == sum(s.merchant_fen for s in order.settlements.all())
    assert page.context["failed"] == 0
    assert _balance(client, merchant=shop.other_merchant.pk).context["merchant"] == shop.other_merchant


def test_balance_page_queries_do_not_grow_with_the_entries(demo_shop, client, merchant_staff, password):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sku = sku_of(demo_shop.products["steam-wallet"], 1000, "账单")
    client.login(email=merchant_staff.email, password=password)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert _balance(client).status_code == 200
        return len(queries)

    delivered_order((sku, 1))
    settlement.create_due_settlements()
    one = count()
    for _ in range(5):
        delivered_order((sku, 1))
    settlement.create_due_settlements()
    settlement.execute_due_settlements()
    assert count() == one


def test_alipay_settle_is_signed_retried_after_busy_and_idempotent(two_merchant_order, alipay_gateway, monkeypatch):
    from accounts.models import Merchant

    order, shop = two_merchant_order
    settlement.create_due_settlements()
    Settlement.objects.filter(order=order).update(provider="alipay")
    settles: dict = {}
    original = alipay_gateway.answer

    def answer(method, biz):
        if method != "alipay.trade.order.settle":
            return original(method, biz)
        alipay_gateway.calls.append((method, biz))
        if alipay_gateway.methods().count("alipay.trade.order.settle") == 1:  # the first settle
            return {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error"}
        settles.setdefault(biz["out_request_no"], biz)
        return {"code": "10000", "msg": "Success", "trade_no": biz["trade_no"], "settle_no": "2024SETTLE0001"}

    monkeypatch.setattr(alipay_gateway, "answer", answer)
    # No royalty account bound yet: refused before anything is sent, and retried later.
    assert settlement.execute_due_settlements() == {"retry": 2}
    assert alipay_gateway.calls == []
    Merchant.objects.update(alipay_settlement_account="2088000000000042")  # bound as royalty receivers
    Settlement.objects.filter(order=order).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    outcomes = settlement.execute_due_settlements()
    assert outcomes == {"retry": 1, "settled": 1}  # the first answer was "busy": outcome unknown, retried
    Settlement.objects.filter(order=order).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert settlement.execute_due_settlements() == {"settled": 1}
    ours = order.settlements.get(merchant=shop.merchant)
    assert ours.status == Settlement.Status.SETTLED
    biz = settles[ours.out_request_no]
    assert biz["trade_no"] == selectors.paying_payment(order).gateway_trade_no
    assert biz["royalty_parameters"] == [
        {"royalty_type": "transfer", "trans_in_type": "userId", "trans_in": "2088000000000042", "amount": "35.98",
         "desc": order.number}
    ]  # fmt: skip
    assert alipay_gateway.methods().count("alipay.trade.order.settle") == 3
    assert_ledger_ok()


def test_refunds_of_a_paid_out_order_run_one_at_a_time(two_merchant_order, monkeypatch):
    """What a refund takes back from merchants depends on the refunds before it: once the order's
    money was paid out, a second refund waits while one is at the gateway, then runs."""
    import threading
    import time as clock

    order, _shop = two_merchant_order
    settlement.create_due_settlements()
    settlement.execute_due_settlements()
    payment = selectors.paying_payment(order)
    made = [
        Refund.objects.create(
            payment=payment, order=order, out_refund_no=f"RWAIT{i}", amount_fen=700, reason=Refund.Reason.OPERATOR
        )
        for i in range(2)
    ]
    slow = SandboxProvider.refund

    def refund_slowly(self, **kwargs):
        clock.sleep(0.5)  # the gateway takes its time: the other refund arrives meanwhile
        return slow(self, **kwargs)

    monkeypatch.setattr(SandboxProvider, "refund", refund_slowly)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def execute(refund_id: int) -> None:
        start.wait()
        try:
            outcomes.append(services.execute_refund(refund_id=refund_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=execute, args=(r.pk,)) for r in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["succeeded", "waiting"]
    # The waiting one was queued again when the first was final, and ran then.
    assert set(Refund.objects.values_list("status", flat=True)) == {Refund.Status.SUCCEEDED}
    settlements = list(order.settlements.order_by("merchant_id"))
    targets = settlement.reversal_targets(
        [(s.gross_fen, s.fee_fen, s.merchant_fen) for s in settlements],
        total_fen=sum(s.gross_fen for s in settlements), refunded_fen=1_400,
    )  # fmt: skip
    assert [(s.reversed_fee_fen, s.reversed_merchant_fen) for s in settlements] == targets
    assert_ledger_ok()


def test_an_operators_full_refund_after_their_partial_one_gives_back_the_rest_once(demo_shop, operator):
    """Refunding "in full" after a partial refund returns what is left, and a second click nothing."""
    sku = sku_of(demo_shop.products["steam-wallet"], 10_000, "P1")
    order = delivered_order((sku, 1))
    services.refund_amount_by_operator(
        order=order, amount_fen=3_000, note="part", actor=operator, route=Refund.Route.ORIGINAL
    )
    assert services.refund_in_full_by_operator(order_id=order.pk, note="rest", actor=operator) is True
    assert services.refund_in_full_by_operator(order_id=order.pk, note="again", actor=operator) is False
    order.refresh_from_db()
    assert order.refunded_fen == 10_000
    assert sorted(order.refunds.values_list("amount_fen", flat=True)) == [3_000, 7_000]
    assert_ledger_ok()
