"""The ledger is append-only (ORM and database), postings balance, and the split arithmetic is exact."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from payments import ledger
from payments.models import LedgerEntry
from payments.settlement import SplitLine, compute_split, reversal_targets

FAST = settings(max_examples=50, deadline=None)


@pytest.mark.django_db
def test_entries_cannot_be_changed_or_deleted_through_the_orm():
    (entry, _in) = ledger.post(
        order_id=None, kind="payment", reference="T1",
        lines=[ledger.Line(ledger.UNALLOCATED, 100), ledger.Line(ledger.BUYER_PAID, 100)],
    )  # fmt: skip
    entry.amount_fen = 1
    with pytest.raises(TypeError, match="append-only"):
        entry.save()
    with pytest.raises(TypeError, match="append-only"):
        entry.delete()
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount_fen=1)
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.all().delete()
    assert LedgerEntry.objects.get(pk=entry.pk).amount_fen == 100


@pytest.mark.django_db
@pytest.mark.parametrize("sql", ["UPDATE payments_ledgerentry SET amount_fen = 1", "DELETE FROM payments_ledgerentry"])
def test_the_database_refuses_update_and_delete(sql):
    ledger.post(
        order_id=None, kind="payment", reference="T2",
        lines=[ledger.Line(ledger.BUYER_PAID, 250), ledger.Line(ledger.UNALLOCATED, 250)],
    )  # fmt: skip
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert sorted(LedgerEntry.objects.values_list("amount_fen", flat=True)) == [250, 250]


@pytest.mark.django_db
def test_unbalanced_postings_are_refused_and_a_posting_is_made_once():
    with pytest.raises(ledger.UnbalancedPosting):
        ledger.post(
            order_id=None, kind="payment", reference="T3",
            lines=[ledger.Line(ledger.BUYER_PAID, 100), ledger.Line(ledger.UNALLOCATED, 99)],
        )  # fmt: skip
    lines = [ledger.Line(ledger.BUYER_PAID, 100), ledger.Line(ledger.UNALLOCATED, 100)]
    assert len(ledger.post(order_id=None, kind="payment", reference="T3", lines=lines)) == 2
    assert ledger.post(order_id=None, kind="payment", reference="T3", lines=lines) == []
    assert ledger.balance(ledger.BUYER_PAID) == 100


# -- the arithmetic, property-based ------------------------------------------------------------------

rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("0.9999"), places=4)
merchant_rates = st.dictionaries(st.integers(1, 6), rates, min_size=1, max_size=4)


@st.composite
def orders(draw):
    by_merchant = draw(merchant_rates)
    lines = [
        SplitLine(merchant_id, rate, draw(st.integers(0, 10**7)), draw(st.integers(0, 10**4)))
        for merchant_id, rate in by_merchant.items()
        for _ in range(draw(st.integers(1, 3)))
    ]
    return lines


@FAST
@given(orders())
def test_every_split_adds_up_to_the_fen(lines):
    splits = compute_split(lines)
    assert sum(s.paid_fen for s in splits) == sum(line.total_fen for line in lines)
    for split in splits:
        rate = next(line.rate for line in lines if line.merchant_id == split.merchant_id)
        assert split.fee_fen + split.merchant_fen == split.gross_fen
        assert 0 <= split.fee_fen <= split.gross_fen
        assert abs(Decimal(split.fee_fen) - Decimal(split.gross_fen) * rate) <= Decimal("0.5")
        # A platform-funded discount is paid out of the platform's share, never the merchant's.
        funded = split.gross_fen - split.paid_fen
        assert split.platform_net_fen == split.fee_fen - funded
    # Money the buyers paid = what the platform keeps + what merchants get.
    assert sum(s.platform_net_fen + s.merchant_fen for s in splits) == sum(line.total_fen for line in lines)


def test_half_fen_rounds_up_and_a_merchant_funded_discount_lowers_the_gross():
    (split,) = compute_split([SplitLine(1, Decimal("0.1"), 1005)])
    assert (split.fee_fen, split.merchant_fen) == (101, 904)  # 100.5 → 101
    (discounted,) = compute_split([SplitLine(1, Decimal("0.1"), 1000 - 200)])  # merchant pays the 2.00 off
    assert (discounted.gross_fen, discounted.fee_fen, discounted.merchant_fen) == (800, 80, 720)
    (coupon,) = compute_split([SplitLine(1, Decimal("0.1"), 800, platform_funded_fen=200)])  # platform pays it
    assert (coupon.gross_fen, coupon.fee_fen, coupon.merchant_fen, coupon.platform_net_fen) == (1000, 100, 900, -100)


@st.composite
def refund_sequences(draw):
    splits = compute_split(draw(orders()))
    settlements = [(s.gross_fen, s.fee_fen, s.merchant_fen) for s in splits if s.gross_fen > 0]
    total = sum(g for g, _f, _m in settlements)
    steps = draw(st.lists(st.integers(0, max(total, 0)), max_size=6))
    return settlements, total, [*sorted(steps), total]


@FAST
@given(refund_sequences())
def test_reversals_are_exact_bounded_and_complete(case):
    settlements, total, cumulative = case
    if not settlements:
        return
    for refunded in cumulative:
        targets = reversal_targets(settlements, total_fen=total, refunded_fen=refunded)
        assert sum(fee + merchant for fee, merchant in targets) == refunded
        for (gross, fee, merchant), (fee_back, merchant_back) in zip(settlements, targets, strict=True):
            assert 0 <= fee_back <= fee and 0 <= merchant_back <= merchant, (gross, fee, merchant, refunded)
    assert reversal_targets(settlements, total_fen=total, refunded_fen=total) == [(f, m) for _g, f, m in settlements]
