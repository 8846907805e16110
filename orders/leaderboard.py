"""The spending leaderboard (/me/leaderboard/): top buyers this week, this month and all time.

Spend is what a buyer paid for goods and kept: ``total_fen − refunded_fen`` of their goods orders
that were paid (paid, processing, delivered, or refunded — a partly refunded order keeps its
remainder; a fully refunded one adds nothing), counted in the period of ``paid_at``. Wallet top-ups
are not spending (the goods bought with the wallet are). Orders being refunded right now
(``refunding``) do not count until the refund is final. Periods start at local midnight (the
shop's ``TIME_ZONE``): Monday for the week, the 1st for the month.

Only active users who have not hidden themselves (``User.show_on_leaderboard``) are ranked. Names
are masked (:func:`mask_name`): the nickname if set, else the e-mail address.

A board is one aggregate query over the orders plus one query for the listed users' names, then
cached (``LEADERBOARD_CACHE_SECONDS``) and recomputed every 5 minutes by the beat task
``orders.tasks.refresh_leaderboard`` so that pages read it from the cache. A payment or a refund
(an order event moving to paid, delivered or refunded) asks for an earlier recomputation,
coalesced: at most one queued per ``REFRESH_AFTER_CHANGE`` seconds, so a buyer sees the board move
within a minute of paying while a busy shop still computes it about once a minute. The board keeps every
ranked buyer's total (a sorted array of integers, 8 bytes each), so a user's own rank — whether or
not they are in the top list — is a binary search, after one small query for their own spend.
bench/leaderboard.py measures it at 50,000 buyers (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import bisect
import datetime
from array import array
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from accounts.models import User
from kameng.tasks import enqueue_on_commit
from orders.models import Order

WEEK, MONTH, ALL = "week", "month", "all"
REFRESH_AFTER_CHANGE = 60  # seconds
PERIODS = (WEEK, MONTH, ALL)
COUNTED = (Order.Status.PAID, Order.Status.PROCESSING, Order.Status.DELIVERED, Order.Status.REFUNDED)


def mask_name(*, nickname: str, email: str) -> str:
    """张*三 for a nickname (first and last character kept; two characters: 张*), a***@qq.com for an
    e-mail address (first character of the local part and the domain kept)."""
    name = nickname.strip()
    if name:
        if len(name) == 1:
            return "*"
        if len(name) == 2:
            return name[0] + "*"
        return name[0] + "*" + name[-1]
    local, _at, domain = email.partition("@")
    return (local[:1] or "*") + "***" + ("@" + domain if domain else "")


def period_start(period: str, *, now: datetime.datetime | None = None) -> datetime.datetime | None:
    """When ``period`` began (local midnight), None for all time."""
    if period == ALL:
        return None
    today = timezone.localtime(now or timezone.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == WEEK:
        return today - datetime.timedelta(days=today.weekday())
    if period == MONTH:
        return today.replace(day=1)
    raise ValueError(f"unknown leaderboard period {period!r}")


def spending_q(*, since: datetime.datetime | None) -> Q:
    """The orders whose spend counts, for any buyer (see the module docstring)."""
    q = Q(kind=Order.Kind.GOODS, status__in=COUNTED, buyer__isnull=False)
    return q & Q(paid_at__gte=since) if since is not None else q


SPENT = Sum(F("total_fen") - F("refunded_fen"))


@dataclass(frozen=True)
class Entry:
    rank: int
    user_id: int
    name: str
    spent_fen: int


@dataclass(frozen=True)
class Board:
    period: str
    since: datetime.datetime | None
    computed_at: datetime.datetime
    top: list[Entry]
    totals: bytes  # every ranked buyer's spend, ascending, as array("q")

    def rank_of(self, spent_fen: int) -> int:
        """The rank a buyer with this spend has: one more than the buyers who spent more."""
        totals = array("q")
        totals.frombytes(self.totals)
        return len(totals) - bisect.bisect_right(totals, spent_fen) + 1

    @property
    def ranked(self) -> int:
        return len(self.totals) // 8


def compute(period: str, *, now: datetime.datetime | None = None, size: int | None = None) -> Board:
    """Rank the shown buyers of ``period`` (two queries)."""
    now = now or timezone.now()
    size = settings.LEADERBOARD_SIZE if size is None else size
    since = period_start(period, now=now)
    rows = list(
        Order.objects.filter(spending_q(since=since), buyer__is_active=True, buyer__show_on_leaderboard=True)
        .order_by()
        .values("buyer_id")
        .annotate(spent=SPENT)
        .filter(spent__gt=0)
        .values_list("buyer_id", "spent")
    )
    rows.sort(key=lambda row: (-row[1], row[0]))
    totals = array("q", sorted(spent for _buyer, spent in rows))
    leaders = rows[:size]
    names = {
        pk: mask_name(nickname=nickname, email=email)
        for pk, nickname, email in User.objects.filter(pk__in=[pk for pk, _ in leaders]).values_list(
            "pk", "nickname", "email"
        )
    }
    top: list[Entry] = []
    for index, (buyer_id, spent) in enumerate(leaders):
        # Equal spend, equal rank (1, 2, 2, 4): the rank of the first buyer with this spend.
        rank = top[-1].rank if top and top[-1].spent_fen == spent else index + 1
        top.append(Entry(rank=rank, user_id=buyer_id, name=names.get(buyer_id, "*"), spent_fen=spent))
    return Board(period=period, since=since, computed_at=now, top=top, totals=totals.tobytes())


def _key(period: str, since: datetime.datetime | None) -> str:
    return f"orders:leaderboard:{period}:{since.isoformat() if since else 'all'}"


def cached(period: str, *, now: datetime.datetime | None = None) -> Board | None:
    """The board of ``period`` if the cache has it (no query either way)."""
    return cache.get(_key(period, period_start(period, now=now)))


def board(period: str, *, now: datetime.datetime | None = None) -> Board:
    """The cached board of ``period``, computed now if the cache has none (a new week, a cold cache)."""
    since = period_start(period, now=now)
    cached = cache.get(_key(period, since))
    if cached is None:
        cached = refresh(period, now=now)
    return cached


def refresh(period: str, *, now: datetime.datetime | None = None) -> Board:
    computed = compute(period, now=now)
    cache.set(_key(period, computed.since), computed, settings.LEADERBOARD_CACHE_SECONDS)
    return computed


def refresh_all(*, now: datetime.datetime | None = None) -> int:
    """Recompute every period's board (the beat task). Returns how many buyers are ranked all time."""
    now = now or timezone.now()
    boards = [refresh(period, now=now) for period in PERIODS]
    return boards[-1].ranked


def on_order_event(sender, *, instance, created: bool, **kwargs) -> None:
    """``post_save`` of OrderEvent (connected in orders/apps.py): a change of what was paid or
    refunded asks for a recomputation soon (:func:`request_refresh`)."""
    if created and instance.to_status in COUNTED and instance.from_status != instance.to_status:
        request_refresh()


def request_refresh() -> None:
    """Queue one recomputation ``REFRESH_AFTER_CHANGE`` seconds after the current transaction
    commits, unless one is already pending (a cache mark; without the cache, the beat task still
    runs every 5 minutes)."""
    from orders.tasks import refresh_leaderboard

    try:
        fresh = cache.add("orders:leaderboard:refresh-pending", 1, REFRESH_AFTER_CHANGE)
    except Exception:  # a cache outage must not fail a payment
        return
    if fresh:
        transaction.on_commit(lambda: refresh_leaderboard.apply_async(countdown=REFRESH_AFTER_CHANGE), robust=True)


def spent_by(*, user, period: str, now: datetime.datetime | None = None) -> int:
    """What ``user`` spent in ``period`` (one query on their own orders)."""
    since = period_start(period, now=now)
    return Order.objects.filter(spending_q(since=since), buyer=user).aggregate(spent=SPENT)["spent"] or 0


@dataclass(frozen=True)
class Standing:
    spent_fen: int
    rank: int | None  # None: nothing spent in the period
    shown: bool  # False: the user hid themselves (rank is where they would be)


def standing(*, user, board: Board, now: datetime.datetime | None = None) -> Standing:
    spent = spent_by(user=user, period=board.period, now=now)
    return Standing(spent_fen=spent, rank=board.rank_of(spent) if spent > 0 else None, shown=user.show_on_leaderboard)


def on_visibility_changed(sender=None, *, user=None, **kwargs) -> None:
    """A user shown or hidden: recompute the boards once the change is committed."""
    from orders.tasks import refresh_leaderboard

    enqueue_on_commit(refresh_leaderboard)
