"""The points ledger and its arithmetic (accounts/points.py), in integer points and fen: earning with
either rounding, the redemption cap, proportional reversal on partial refunds, expiry; the ledger
never goes negative and its balance is always its sum (a hypothesis test)."""

from __future__ import annotations

import contextlib
import datetime
import itertools
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts import points
from accounts.models import LoyaltySettings, PointsEntry, User

FLOOR, HALF_UP = LoyaltySettings.Rounding.FLOOR, LoyaltySettings.Rounding.HALF_UP
Kind = PointsEntry.Kind


# -- arithmetic (pure) -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paid_fen", "rate", "rounding", "expected"),
    [
        (1999, "1", FLOOR, 19),  # ¥19.99 → 19.99 points, rounded down
        (1999, "1", HALF_UP, 20),
        (1949, "1", HALF_UP, 19),  # 19.49 → 19
        (1950, "1", HALF_UP, 20),  # exactly half → up
        (1000, "1.5", FLOOR, 15),
        (333, "1.5", FLOOR, 4),  # 4.995
        (333, "1.5", HALF_UP, 5),
        (99, "1", FLOOR, 0),  # under a yuan earns nothing when rounding down
        (50, "1", HALF_UP, 1),
        (12345, "0", HALF_UP, 0),
        (0, "2", HALF_UP, 0),
        (10_000_000_00, "2.25", FLOOR, 22_500_000),  # big amounts stay exact (integers)
    ],
)
def test_points_earned_per_yuan_paid_with_either_rounding(paid_fen, rate, rounding, expected):
    assert points.points_for_payment(paid_fen, rate=Decimal(rate), rounding=rounding) == expected


@pytest.mark.parametrize(
    ("total_fen", "balance", "per_yuan", "cap", "expected"),
    [
        (2000, 10_000, 100, 20, (400, 400)),  # capped at 20% of ¥20: ¥4 for 400 points
        (1999, 10_000, 100, 20, (399, 399)),  # the cap is rounded down to the fen
        (2000, 150, 100, 20, (150, 150)),  # fewer points than the cap: all of them
        (2000, 10_000, 30, 20, (120, 400)),  # 30 points a yuan: 120 points pay 400 fen exactly
        (1999, 10_000, 30, 20, (120, 399)),  # ceil(399 × 30 / 100) = 120 points for 399 fen
        (2000, 5, 1000, 50, (0, 0)),  # 5 points are worth half a fen: nothing
        (2000, 15, 1000, 50, (10, 1)),  # 15 points are worth 1 fen: 10 of them are taken
        (2000, 10_000, 100, 0, (0, 0)),  # cap 0: points cannot be used
        (2000, 10_000, 100, 100, (2000, 2000)),  # cap 100%: the whole order
        (0, 10_000, 100, 20, (0, 0)),
    ],
)
def test_redemption_stays_within_the_cap_and_the_balance(total_fen, balance, per_yuan, cap, expected):
    found = points.redemption(total_fen=total_fen, balance=balance, points_per_yuan=per_yuan, max_percent=cap)
    assert (found.points, found.discount_fen) == expected
    assert found.points <= balance
    assert found.discount_fen <= total_fen * cap // 100
    assert found.discount_fen <= found.points * 100 // per_yuan  # the points taken pay for the discount


def test_partial_refunds_reverse_earned_and_spent_points_in_proportion():
    # Paid ¥16 (1600 fen) after 400 points took ¥4 off; 16 points earned.
    assert points.refund_shares(earned=16, spent=400, total_fen=1600, before_fen=0, after_fen=400) == (4, 100)
    assert points.refund_shares(earned=16, spent=400, total_fen=1600, before_fen=400, after_fen=1600) == (12, 300)
    # Cumulative floors: thirds of 7 points go 2, 2, 3 — the last refund makes it exact.
    steps = [points.refund_shares(earned=7, spent=0, total_fen=300, before_fen=b, after_fen=a) for b, a in
             [(0, 100), (100, 200), (200, 300)]]  # fmt: skip
    assert [take for take, _give in steps] == [2, 2, 3]
    assert points.refund_shares(earned=7, spent=5, total_fen=300, before_fen=300, after_fen=300) == (0, 0)
    assert points.refund_shares(earned=7, spent=5, total_fen=0, before_fen=0, after_fen=0) == (0, 0)


@given(
    earned=st.integers(0, 10**6), spent=st.integers(0, 10**6), total=st.integers(1, 10**7),
    cuts=st.lists(st.integers(1, 10**7), max_size=6),
)  # fmt: skip
def test_refund_steps_always_add_up_to_all_of_it(earned, spent, total, cuts):
    """However a refund is split, the steps add up to floor(points × refunded / total), and to all
    the points once everything went back."""
    marks = sorted({min(cut, total) for cut in cuts} | {total})
    took = gave = 0
    before = 0
    for after in marks:
        take, give = points.refund_shares(
            earned=earned, spent=spent, total_fen=total, before_fen=before, after_fen=after
        )
        assert take >= 0 and give >= 0
        took, gave, before = took + take, gave + give, after
        assert took == earned * after // total and gave == spent * after // total
    assert (took, gave) == (earned, spent)


# -- the ledger ------------------------------------------------------------------------------------------


@pytest.fixture
def rules(db):
    config = LoyaltySettings.load()
    config.earn_points_per_yuan, config.earn_rounding, config.expire_after_years = Decimal("1"), FLOOR, 1
    config.save()
    return config


def fake_order(number: str):
    return SimpleNamespace(number=number, pk=None)


@pytest.mark.django_db
def test_a_movement_is_made_once_and_a_debit_never_overdraws(user, rules):
    first = points.move(user=user, points=100, kind=Kind.ADJUSTMENT, reference="op-1")
    assert points.move(user=user, points=100, kind=Kind.ADJUSTMENT, reference="op-1") == first
    with pytest.raises(points.InsufficientPoints) as refused:
        points.move(user=user, points=-101, kind=Kind.ADJUSTMENT, reference="op-2")
    assert (refused.value.balance, refused.value.wanted) == (100, 101)
    capped = points.move(user=user, points=-500, kind=Kind.EARN_REVERSAL, reference="r-1", cap=True)
    assert capped.points == -100 and points.balance(user) == 0
    assert points.move(user=user, points=-5, kind=Kind.EARN_REVERSAL, reference="r-2", cap=True) is None
    assert [e.seq for e in PointsEntry.objects.order_by("seq")] == [1, 2]


@pytest.mark.django_db
def test_the_database_refuses_to_change_or_remove_an_entry(user, rules):
    entry = points.move(user=user, points=10, kind=Kind.ADJUSTMENT, reference="op-1")
    for statement in (
        "UPDATE accounts_pointsentry SET points = 1000 WHERE id = %s",
        "DELETE FROM accounts_pointsentry WHERE id = %s",
    ):
        with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [entry.pk])
    with pytest.raises(TypeError):
        PointsEntry.objects.filter(pk=entry.pk).update(points=5)


def local(year: int, month: int = 1, day: int = 1, hour: int = 0, minute: int = 30) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime(year, month, day, hour, minute))


@pytest.mark.django_db
def test_points_earned_in_a_year_expire_at_the_end_of_the_next_year(user, rules):
    this_year = timezone.localtime().year
    points.move(user=user, points=100, kind=Kind.EARN, reference="K1")
    points.move(user=user, points=-30, kind=Kind.SPEND, reference="K2")  # the oldest points go first

    assert points.expire_due(now=local(this_year + 1, 12, 31, 23, 59)) == 0  # still valid all next year
    assert points.expire_due(now=local(this_year + 2)) == 1
    assert points.balance(user) == 0
    expiry = PointsEntry.objects.get(kind=Kind.EXPIRY)
    assert expiry.points == -70 and expiry.note == str(this_year)
    assert points.expire_due(now=local(this_year + 2, 6)) == 0  # nothing more: idempotent
    assert points.ledger_sum(user) == points.balance(user) == 0


@pytest.mark.django_db
def test_the_operators_choose_how_long_points_last(user, rules):
    this_year = timezone.localtime().year
    points.move(user=user, points=100, kind=Kind.EARN, reference="K1")
    rules.expire_after_years = 2
    rules.save()
    assert points.expire_due(now=local(this_year + 2, 6)) == 0
    assert points.expire_due(now=local(this_year + 3)) == 1
    points.move(user=user, points=40, kind=Kind.EARN, reference="K2")
    rules.expire_after_years = 0  # never
    rules.save()
    assert points.expire_due(now=local(this_year + 10)) == 0
    assert points.balance(user) == 40


# -- the invariants under any sequence (hypothesis) -------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 5000)),  # an order paid (fen)
        st.tuples(st.just("spend"), st.integers(1, 400)),  # points used at checkout
        st.tuples(st.just("release"), st.integers(0, 20)),  # an unpaid order closed: its points back
        st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 100)),  # % of an order refunded
        st.tuples(st.just("expire"), st.integers(0, 3)),  # the beat task, N years from now
        st.tuples(st.just("adjust"), st.integers(-300, 300)),
    ),
    max_size=25,
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_points_never_go_negative_and_the_balance_is_the_ledger_sum(rules, steps):
    counter = _references  # references are unique across examples: the database outlives one example
    user = User.objects.create_user(email=f"h{next(_users)}@example.com")
    orders: list[dict] = []  # per paid order: its total and refunded fen, and its fake order
    spends: list = []
    this_year = timezone.localtime().year
    for step in steps:
        kind = step[0]
        if kind == "earn":
            order = fake_order(f"E{next(counter)}")
            points.move(user=user, points=max(step[1] // 100, 1), kind=Kind.EARN, reference=order.number)
            orders.append({"order": order, "total": step[1], "refunded": 0, "earned": max(step[1] // 100, 1)})
        elif kind == "spend":
            order = fake_order(f"S{next(counter)}")
            try:
                points.move(user=user, points=-step[1], kind=Kind.SPEND, reference=order.number)
            except points.InsufficientPoints:
                continue
            spends.append((order, step[1]))
        elif kind == "release" and spends:
            order, spent = spends.pop(step[1] % len(spends))
            points.move(user=user, points=spent, kind=Kind.RELEASE, reference=order.number)
        elif kind == "refund" and orders:
            paid = orders[step[1] % len(orders)]
            after = min(paid["total"], paid["refunded"] + paid["total"] * step[2] // 100)
            take, _give = points.refund_shares(
                earned=paid["earned"], spent=0, total_fen=paid["total"], before_fen=paid["refunded"], after_fen=after
            )
            if take:
                points.move(
                    user=user, points=-take, kind=Kind.EARN_REVERSAL, reference=f"{paid['order'].number}:r{after}",
                    cap=True,
                )  # fmt: skip
            paid["refunded"] = after
        elif kind == "expire":
            points.expire_due(now=local(this_year + step[1], 6))
        elif kind == "adjust" and step[1]:
            with contextlib.suppress(points.InsufficientPoints):  # a take beyond the balance is refused
                points.move(user=user, points=step[1], kind=Kind.ADJUSTMENT, reference=f"op-{next(counter)}")
        balance = points.balance(user)
        assert balance >= 0
        assert balance == points.ledger_sum(user)
    entries = list(PointsEntry.objects.filter(account__user=user).order_by("seq"))
    running = 0
    for number, entry in enumerate(entries, start=1):
        running += entry.points
        assert (entry.seq, entry.balance_after) == (number, running)
        assert entry.balance_after >= 0


_users = itertools.count()
_references = itertools.count()


@pytest.mark.django_db
def test_check_ledger_names_a_points_account_whose_entries_do_not_chain(user, rules):
    from payments.selectors import violations

    points.move(user=user, points=100, kind=Kind.ADJUSTMENT, reference="op-1")
    points.move(user=user, points=-40, kind=Kind.SPEND, reference="K1")
    assert list(points.ledger_violations()) == [] and list(violations()) == []
    account = points.account_for(user)
    PointsEntry.objects.create(account=account, seq=3, kind=Kind.ADJUSTMENT, points=5, balance_after=500, reference="x")
    [(account_id, problem)] = points.ledger_violations()
    assert account_id == account.pk and "balance 500, entries sum to 65" in problem
    assert [v.name for v in violations()] == ["points_ledger_broken"]
