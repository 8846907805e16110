"""Points: an append-only ledger per buyer, shaped like the wallet's (``accounts/wallet.py``).

Every movement runs :func:`move`: it locks the buyer's :class:`~accounts.models.LoyaltyAccount` row,
reads the last entry and appends the next with ``seq + 1`` and the new balance. The database backs
each promise on its own (:class:`~accounts.models.PointsEntry`): UNIQUE(account, seq), CHECK(balance
≥ 0), UNIQUE(kind, reference) — a movement asked for twice returns the entry already made — and a
trigger refusing UPDATE/DELETE.

The arithmetic, all integers (points and fen), with the operators' numbers from
:class:`~accounts.models.LoyaltySettings`:

* **earning** (:func:`points_for_payment`): ``paid_fen × rate / 100`` points, the rate in hundredths
  of a point per yuan, rounded down or half up as the operators chose;
* **spending** (:func:`redemption`): at most ``redeem_max_percent`` of the order's total (rounded
  down to the fen), and no more points than the buyer has. ``P`` points make one yuan, so ``n``
  points are worth ``n × 100 // P`` fen; the discount is that rounded down, and the points taken
  are the fewest that pay for it (``ceil(discount × P / 100)``), so no point is taken for nothing;
* **refunds** (:func:`refund_shares`): after a refund the cumulative share of the order refunded is
  ``refunded / total``; earned points taken back and spent points given back are each
  ``floor(points × refunded / total)`` cumulatively, the step being the difference from the previous
  refund's. Rounding down, the buyer keeps a fraction of a point of what they earned and waits for a
  fraction of what they spent until the last refund, which makes both exact. A take-back never takes
  more than the balance (points already spent or expired are not chased): the balance never goes
  negative.
* **expiry** (:func:`expire_due`): points credited in year ``Y`` (local time) expire at the end of
  year ``Y + expire_after_years``. Debits use up the oldest credits first, so what expires for a
  buyer is ``credits up to year Y − all debits so far`` when positive (earlier expiries being debits
  too, a second run finds nothing).

Lock order: callers that hold Order (and Payment, Wallet) locks take the LoyaltyAccount lock after
them: Order → Payment → Wallet → LoyaltyAccount.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import LoyaltyAccount, LoyaltySettings, PointsEntry, User

Kind = PointsEntry.Kind
logger = logging.getLogger(__name__)


class InsufficientPoints(Exception):
    """The buyer has fewer points than a debit wants; nothing was changed."""

    def __init__(self, *, balance: int, wanted: int):
        super().__init__(f"balance {balance} points, {wanted} wanted")
        self.balance = balance
        self.wanted = wanted


# -- the arithmetic (pure) ---------------------------------------------------------------------------


def points_for_payment(paid_fen: int, *, rate: Decimal, rounding: str) -> int:
    """Points earned for ``paid_fen``: ``paid_fen / 100 × rate`` rounded as the operators chose."""
    if paid_fen <= 0 or rate <= 0:
        return 0
    hundredths = int((rate * 100).to_integral_value())  # the rate has two decimals (the field's)
    numerator, denominator = paid_fen * hundredths, 100 * 100
    if rounding == LoyaltySettings.Rounding.HALF_UP:
        return (2 * numerator + denominator) // (2 * denominator)
    return numerator // denominator


@dataclass(frozen=True)
class Redemption:
    points: int  # taken from the balance
    discount_fen: int  # taken off the order


def redemption(
    *, total_fen: int, balance: int, points_per_yuan: int, max_percent: int, room_fen: int | None = None
) -> Redemption:
    """The most a buyer with ``balance`` points may take off an order of ``total_fen``, and at most
    ``room_fen`` when given (what the pricing engine lets the platform fund on the order)."""
    if total_fen <= 0 or balance <= 0 or points_per_yuan <= 0 or max_percent <= 0:
        return Redemption(0, 0)
    cap_fen = total_fen * min(max_percent, 100) // 100
    if room_fen is not None:
        cap_fen = min(cap_fen, room_fen)
    discount = min(cap_fen, balance * 100 // points_per_yuan)
    if discount <= 0:
        return Redemption(0, 0)
    points = -(-discount * points_per_yuan // 100)  # ceil: the fewest points that pay for it
    return Redemption(points=points, discount_fen=discount)


def refund_shares(*, earned: int, spent: int, total_fen: int, before_fen: int, after_fen: int) -> tuple[int, int]:
    """(earned points to take back, spent points to give back) for a refund that took the order's
    refunded amount from ``before_fen`` to ``after_fen`` (cumulative floors, see the module doc)."""
    if total_fen <= 0 or after_fen <= before_fen:
        return 0, 0
    after_fen, before_fen = min(after_fen, total_fen), min(before_fen, total_fen)

    def step(points: int) -> int:
        return points * after_fen // total_fen - points * before_fen // total_fen

    return step(max(earned, 0)), step(max(spent, 0))


# -- the ledger ---------------------------------------------------------------------------------------


def account_for(user: User) -> LoyaltyAccount:
    account, _created = LoyaltyAccount.objects.get_or_create(user=user)
    return account


def balance(user: User | None) -> int:
    """The user's points: the last entry's balance (0 for a guest or a user without entries)."""
    if user is None or not user.is_authenticated:
        return 0
    last = PointsEntry.objects.filter(account__user=user).order_by("-seq").values_list("balance_after", flat=True)
    return last.first() or 0


def ledger_sum(user: User) -> int:
    return PointsEntry.objects.filter(account__user=user).aggregate(total=Sum("points"))["total"] or 0


def move(
    *, user: User, points: int, kind: str, reference: str, order=None, note: str = "", actor=None, cap: bool = False
) -> PointsEntry | None:
    """Append one movement (+ credit, − debit). Idempotent by (kind, reference).

    A debit beyond the balance raises :class:`InsufficientPoints`, or with ``cap=True`` takes what
    there is (None when that is nothing): refunds take back earned points that way.
    """
    if points == 0:
        raise ValueError("a points movement moves points")
    with transaction.atomic():
        account = account_for(user)
        account = LoyaltyAccount.objects.select_for_update().get(pk=account.pk)
        done = PointsEntry.objects.filter(kind=kind, reference=reference).first()
        if done is not None:
            if done.account_id != account.pk or (done.points != points and not cap):
                raise ValueError(f"points {kind} {reference} was already recorded differently")
            return done
        last = PointsEntry.objects.filter(account=account).order_by("-seq").values("seq", "balance_after").first()
        seq, before = (last["seq"], last["balance_after"]) if last else (0, 0)
        if before + points < 0:
            if not cap:
                raise InsufficientPoints(balance=before, wanted=-points)
            points = -before
            if points == 0:
                return None
        try:
            with transaction.atomic():
                return PointsEntry.objects.create(
                    account=account, seq=seq + 1, kind=kind, points=points, balance_after=before + points,
                    reference=reference, order=order, note=note[:200], created_by=actor,
                )  # fmt: skip
        except IntegrityError:
            # Only reachable without the row lock (SQLite has none): the same movement raced us.
            done = PointsEntry.objects.filter(kind=kind, reference=reference, account=account).first()
            if done is None:
                raise
            return done


def find(*, kind: str, reference: str) -> PointsEntry | None:
    return PointsEntry.objects.filter(kind=kind, reference=reference).first()


# -- what orders ask for (orders/loyalty.py calls these; accounts never imports orders) ----------------


def earn_for_order(*, user: User, order, paid_fen: int) -> PointsEntry | None:
    """Credit the points a paid goods order earns, once (reference = the order number)."""
    config = LoyaltySettings.load()
    if not config.points_enabled:
        return None
    earned = points_for_payment(paid_fen, rate=config.earn_points_per_yuan, rounding=config.earn_rounding)
    if earned <= 0:
        return None
    return move(user=user, points=earned, kind=Kind.EARN, reference=order.number, order=order, note=order.number)


def spend_for_order(*, user: User, order, points: int) -> PointsEntry:
    """Debit the points an order placed with a points discount uses (in the placing transaction)."""
    entry = move(user=user, points=-points, kind=Kind.SPEND, reference=order.number, order=order, note=order.number)
    assert entry is not None  # only a capped debit makes nothing
    return entry


def release_for_order(*, user: User, order) -> PointsEntry | None:
    """Give back the points an order that was never paid used (expired or cancelled), once."""
    spent = -(PointsEntry.objects.filter(order=order, kind=Kind.SPEND).aggregate(total=Sum("points"))["total"] or 0)
    if spent <= 0:
        return None
    return move(user=user, points=spent, kind=Kind.RELEASE, reference=order.number, order=order, note=order.number)


def respend_after_late_payment(*, user: User, order) -> PointsEntry | None:
    """An expired or cancelled order was paid after all (a late payment): its points had been given
    back, so they are used again — as many as the buyer still has (the platform absorbs the rest;
    the discount was already paid for in money terms)."""
    released = find(kind=Kind.RELEASE, reference=order.number)
    if released is None:
        return None
    return move(
        user=user, points=-released.points, kind=Kind.SPEND, reference=f"{order.number}:late", order=order,
        note=order.number, cap=True,
    )  # fmt: skip


def reverse_for_refund(*, user: User, order, total_fen: int, before_fen: int, after_fen: int) -> list[PointsEntry]:
    """A refund took the order's refunded amount from ``before_fen`` to ``after_fen``: take back the
    earned points and give back the spent ones in proportion (:func:`refund_shares`). Idempotent:
    the references carry the cumulative refunded amount, which only grows."""
    sums = PointsEntry.objects.filter(order=order).aggregate(
        earned=Sum("points", filter=Q(kind=Kind.EARN)),
        spent=Sum("points", filter=Q(kind__in=[Kind.SPEND, Kind.RELEASE])),
    )
    earned, spent = sums["earned"] or 0, -(sums["spent"] or 0)
    take, give = refund_shares(
        earned=earned, spent=spent, total_fen=total_fen, before_fen=before_fen, after_fen=after_fen
    )
    reference = f"{order.number}:r{after_fen}"
    made = []
    if give:
        made.append(move(user=user, points=give, kind=Kind.REFUND_RETURN, reference=reference, order=order))
    if take:
        made.append(move(user=user, points=-take, kind=Kind.EARN_REVERSAL, reference=reference, order=order, cap=True))
    return [entry for entry in made if entry is not None]  # a capped take-back of nothing makes no entry


# -- expiry (beat) -------------------------------------------------------------------------------------


def expiry_boundary(now: datetime.datetime, *, years: int) -> datetime.datetime | None:
    """Credits made before this instant have expired at ``now`` (None: points never expire).
    Points of year Y last until the end of year Y + ``years``: at ``now`` in year N, credits of
    years up to N − years − 1 are due, i.e. those before 1 January of year N − years."""
    if years <= 0:
        return None
    local = timezone.localtime(now)
    return local.replace(year=local.year - years, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def expire_due(*, now: datetime.datetime | None = None) -> int:
    """Expire every buyer's points that are past their year (idempotent; daily beat task).
    Returns the number of buyers whose points expired."""
    now = now or timezone.now()
    boundary = expiry_boundary(now, years=LoyaltySettings.load().expire_after_years)
    if boundary is None:
        return 0
    # One grouped query: per account, the old credits and every debit (expiries included).
    due = (
        PointsEntry.objects.values("account_id", "account__user_id")
        .annotate(
            old_credits=Sum("points", filter=Q(points__gt=0, created_at__lt=boundary)),
            debits=Sum("points", filter=Q(points__lt=0)),
        )
        .filter(old_credits__gt=0)
        .order_by("account_id")
    )
    expired = 0
    label = f"{boundary.year - 1}"
    for row in due:
        lapsed = row["old_credits"] + (row["debits"] or 0)
        if lapsed <= 0:
            continue
        user = User.objects.get(pk=row["account__user_id"])
        entry = move(
            user=user, points=-lapsed, kind=Kind.EXPIRY, reference=f"expiry:{row['account_id']}:{label}",
            note=label, cap=True,
        )  # fmt: skip
        if entry is not None:
            expired += 1
    if expired:
        logger.info("points of %d buyers expired (credited up to the end of %s)", expired, label)
    return expired


# -- the ledger's own invariants (check_ledger) ----------------------------------------------------------


def ledger_violations():
    """(account id, what is wrong) for every points account whose entries do not chain: numbered
    1, 2, 3… with each ``balance_after`` the running sum and never negative. The database enforces
    most of it; this catches what a constraint cannot (a gap, a wrong running balance)."""
    account, expected_seq, running = None, 0, 0
    for row in (
        PointsEntry.objects.order_by("account_id", "seq")
        .values("account_id", "seq", "points", "balance_after")
        .iterator()
    ):
        if row["account_id"] != account:
            account, expected_seq, running = row["account_id"], 0, 0
        expected_seq += 1
        running += row["points"]
        if row["seq"] != expected_seq:
            yield account, f"entry {row['seq']} where {expected_seq} was expected"
        elif row["balance_after"] != running or running < 0:
            yield account, f"entry {row['seq']}: balance {row['balance_after']}, entries sum to {running}"
