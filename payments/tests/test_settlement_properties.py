"""Property-based: random orders with several merchants and rates, duplicate payments, partial and
full refunds before and after payout. After every step the ledger invariants hold (check_ledger's
list is empty), every split adds up, nothing is paid out twice and no balance goes negative.

Each example builds its own merchants and order (data of earlier examples stays, with distinct
ids: the ledger cannot be deleted from, by design), on a transactional database so refunds run
through the real on-commit Celery path (eager) and record_refund_result.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Merchant
from catalog.models import Sku
from orders.models import Order, OrderItem
from payments import ledger, selectors, services, settlement
from payments.models import LedgerEntry, Payment, Refund, Settlement

pytestmark = pytest.mark.django_db(transaction=True)

rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("0.3"), places=4)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("refund"), st.integers(1, 10**6)),
        st.tuples(st.just("split"), st.just(0)),
        st.tuples(st.just("payout"), st.just(0)),
        st.tuples(st.just("duplicate"), st.just(0)),
    ),
    max_size=6,
)


def build_order(sku: Sku, lines: list[tuple[Decimal, list[int]]]) -> Order:
    tag = uuid.uuid4().hex[:10]
    total = sum(sum(amounts) for _rate, amounts in lines)
    now = timezone.now()
    order = Order.objects.create(
        number=f"H{tag}", email=f"{tag}@example.com", status=Order.Status.DELIVERED, subtotal_fen=total,
        total_fen=total, reserved_until=now + timedelta(minutes=15), idempotency_key=tag, paid_at=now,
        delivered_at=now,
    )  # fmt: skip
    for index, (rate, amounts) in enumerate(lines):
        merchant = Merchant.objects.create(name=f"M{tag}{index}", slug=f"m-{tag}-{index}", commission_rate=rate)
        for amount in amounts:
            OrderItem.objects.create(
                order=order, sku=sku, merchant=merchant, product_title="x", sku_label="x", delivery_mode="automatic",
                unit_price_fen=amount, quantity=1, total_fen=amount,
            )  # fmt: skip
    Payment.objects.create(
        order=order, provider="sandbox", out_trade_no=f"PH{tag}", amount_fen=total, status=Payment.Status.PAID,
        gateway_trade_no=f"GH{tag}", paid_at=now,
    )  # fmt: skip
    return order


def assert_invariants(order: Order) -> None:
    assert [str(v) for v in selectors.violations()] == []
    balances = ledger.order_balances(order.pk)
    held = sum(amount for account, amount in balances.items() if account not in {"buyer_paid", "refund"})
    assert balances.get("buyer_paid", 0) - balances.get("refund", 0) == held
    assert all(amount >= 0 for amount in balances.values())
    for row in order.settlements.all():
        assert row.fee_fen + row.merchant_fen == row.gross_fen
        assert LedgerEntry.objects.filter(kind="payout", reference=row.out_request_no).count() in (0, 2)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.tuples(rates, st.lists(st.integers(1, 50_000), min_size=1, max_size=2)), min_size=1, max_size=3),
    actions=steps,
)
def test_random_payments_refunds_and_payouts_keep_the_ledger_exact(demo_shop, lines, actions):
    sku = Sku.objects.filter(product=demo_shop.products["steam-wallet"]).first()
    order = build_order(sku, lines)
    keeper = Payment.objects.get(order=order)
    for action, amount in actions:
        if action == "split":
            settlement.create_due_settlements()
        elif action == "payout":
            settlement.create_due_settlements()
            settlement.execute_due_settlements()
        elif action == "duplicate":
            tag = uuid.uuid4().hex[:10]
            extra = Payment.objects.create(
                order=order, provider="sandbox", out_trade_no=f"PD{tag}", amount_fen=order.total_fen
            )
            outcome = services.confirm_payment(
                out_trade_no=extra.out_trade_no, amount_fen=order.total_fen, gateway_trade_no=f"GD{tag}",
                provider="sandbox",
            )  # fmt: skip
            assert outcome == services.Confirmation.DUPLICATE
        else:
            keeper.refresh_from_db()
            left = services.refundable_fen(keeper)
            if left <= 0:
                continue
            made = services.request_refund(payment=keeper, amount_fen=min(amount, left), reason=Refund.Reason.OPERATOR)
            made.refresh_from_db()
            assert made.status == Refund.Status.SUCCEEDED
        assert_invariants(order)
    settlement.create_due_settlements()
    settlement.execute_due_settlements()
    assert_invariants(order)
    order.refresh_from_db()
    rows = list(order.settlements.all())
    assert sum(r.gross_fen for r in rows) == order.total_fen
    refunded = ledger.order_balances(order.pk).get("refund", 0)
    duplicates = Payment.objects.filter(order=order).exclude(pk=keeper.pk).count()
    assert refunded == order.refunded_fen + duplicates * order.total_fen
    assert sum(r.reversed_fee_fen + r.reversed_merchant_fen for r in rows) == order.refunded_fen
    assert all(r.status in (Settlement.Status.SETTLED, Settlement.Status.REVERSED) for r in rows)
