"""Invite a friend (分销): attribution, commission earned, matured and clawed back.

* Attribution (first touch): ``?invite=CODE`` on any page leaves a signed cookie for the programme's
  window (``marketing.middleware``); allauth's ``user_signed_up`` turns it into a :class:`Referral`
  (the inviter's own inviter is the level-2 inviter).
* Earned (``orders.signals.order_paid``, under the order lock): for a goods order of an invitee, each
  level earns round_half_up(paid × rate), ``pending``; the rate is the programme's, or the override of
  the beneficiary's member level (:func:`rate_for`: the inviter's level decides). The platform pays it
  out of its commission, so the total is capped at the platform's share of the order
  (``payments.settlement.compute_split``: fee less platform-funded discounts); level 1 is served first.
* Booked: once the order is split (``platform_fee`` holds the platform's share), the commission is
  posted in the order's ledger, ``platform_fee`` → ``commission:<user id>`` (kind ``commission``).
  The beat task books, and a refund books first (``reverse_for_refund`` may just have split it).
* Matured (beat, after ``hold_days``): ``commission:<id>`` → ``wallets`` (kind
  ``commission_payout``) and the beneficiary's wallet is credited (less any debt, below).
* Clawed back (``orders.signals.order_refunded``): the commission kept is
  amount − round_half_up(amount × refunded / total), never more than what the platform still has of
  the order; the difference goes back to ``platform_fee`` (kind ``commission_clawback``) — from
  ``commission:<id>`` while pending, from ``wallets`` once available: the wallet is debited what its
  balance allows, and the rest is recorded as ``owed_fen`` and netted from the beneficiary's next
  commissions when they mature (the ledger books the whole claw-back at once; the wallet catches up
  as the debt is netted).

Lock order: Order → (the chain of orders/locks.py) → Commission (by id) → Wallet.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Subquery, Sum
from django.utils import timezone

from accounts import wallet
from accounts.models import LoyaltyAccount, User, Wallet, WalletEntry
from kameng.money import round_half_up
from marketing.models import Commission, InviteCode, LevelCommissionRate, Referral, ReferralProgram
from orders import locks as orders_locks
from orders.models import Order, OrderItem
from payments import ledger
from payments.settlement import SplitLine, compute_split

COOKIE = "kameng_invite"
COOKIE_SALT = "marketing.invite"
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed by hand
CODE_LENGTH = 8
Status = Commission.Status


# -- codes and attribution ---------------------------------------------------------------------------


def code_for(user: User) -> InviteCode:
    """The user's invite code, made on first use (a collision of random codes is tried again)."""
    found = InviteCode.objects.filter(user=user).first()
    if found is not None:
        return found
    for _attempt in range(5):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        try:
            with transaction.atomic():
                return InviteCode.objects.create(user=user, code=code)
        except IntegrityError:
            found = InviteCode.objects.filter(user=user).first()
            if found is not None:  # made meanwhile by another request
                return found
    raise RuntimeError("no free invite code after 5 tries")


def normalise(code: str) -> str:
    return (code or "").strip().upper()[:12]


def attribute(*, invitee: User, code: str) -> Referral | None:
    """Record who invited ``invitee`` (at sign-up). Nothing when the programme is off, the code is
    unknown or the invitee's own, or the invitee was attributed already (first touch wins)."""
    if not code or not ReferralProgram.load().enabled:
        return None
    owner = InviteCode.objects.filter(code=normalise(code)).values_list("user_id", flat=True).first()
    if owner is None or owner == invitee.pk:
        return None
    level2 = Referral.objects.filter(invitee_id=owner).values_list("inviter_id", flat=True).first()
    if level2 == invitee.pk:
        level2 = None
    referral, _created = Referral.objects.get_or_create(
        invitee=invitee, defaults={"inviter_id": owner, "level2_inviter_id": level2}
    )
    return referral


# -- earning -------------------------------------------------------------------------------------------


def platform_share_fen(order: Order) -> int:
    """What the platform keeps of the order once split: its fee less the discounts it funded."""
    items = OrderItem.objects.filter(order=order).select_related("merchant")
    lines = [SplitLine(i.merchant_id, i.merchant.commission_rate, i.total_fen, i.platform_funded_fen) for i in items]
    return max(0, sum(split.platform_net_fen for split in compute_split(lines)))


def rate_for(program: ReferralProgram, *, beneficiary_id: int, level: int) -> Decimal:
    """The rate ``beneficiary_id`` earns at referral ``level`` (1 or 2): their member level's override
    (``LevelCommissionRate``, operators set it in admin) or else the programme's."""
    override = (
        LevelCommissionRate.objects.filter(
            level_id=Subquery(LoyaltyAccount.objects.filter(user_id=beneficiary_id).values("level_id")[:1])
        )
        .values_list("level1_rate", "level2_rate")
        .first()
    )
    if override is not None:
        return override[0] if level == 1 else override[1]
    return program.level1_rate if level == 1 else program.level2_rate


def earn(order: Order) -> list[Commission]:
    """Commission on a paid goods order of an invitee (caller holds the order lock). Once per order."""
    if order.kind != Order.Kind.GOODS or order.buyer_id is None or order.total_fen <= 0:
        return []
    referral = Referral.objects.filter(invitee_id=order.buyer_id).first()
    if referral is None or Commission.objects.filter(order=order).exists():
        return []
    program = ReferralProgram.load()
    if not program.enabled:
        return []
    room = platform_share_fen(order)
    available_at = timezone.now() + timedelta(days=program.hold_days)
    made = []
    for level, beneficiary in ((1, referral.inviter_id), (2, referral.level2_inviter_id)):
        if beneficiary is None:
            continue
        rate = rate_for(program, beneficiary_id=beneficiary, level=level)
        if rate <= 0:
            continue
        amount = min(round_half_up(Decimal(order.total_fen) * rate), room)
        if amount <= 0:
            continue
        room -= amount
        commission = Commission.objects.create(
            order=order, beneficiary_id=beneficiary, level=level, rate=rate, amount_fen=amount,
            available_at=available_at,
        )  # fmt: skip
        made.append(commission)
    return made


# -- booking in the ledger -------------------------------------------------------------------------------


def _is_split(order: Order) -> bool:
    return order.settlements.exists()


def book(order: Order) -> int:
    """Post the order's unbooked commissions, platform_fee → commission:<id>, once it is split
    (caller holds the order lock). Never more than the platform holds of the order."""
    if not _is_split(order):
        return 0
    done = 0
    for commission in Commission.objects.select_for_update().filter(order=order, booked=False).order_by("pk"):
        room = max(0, ledger.balance(ledger.PLATFORM_FEE, order_id=order.pk))
        amount = min(commission.kept_fen, room)
        update = {"booked": True, "clawed_back_fen": commission.amount_fen - amount}
        if amount == 0:
            update["status"] = Status.CLAWED_BACK
        ledger.post(
            order_id=order.pk, kind="commission", reference=commission.reference,
            lines=[
                ledger.Line(ledger.PLATFORM_FEE, -amount),
                ledger.Line(ledger.commission(commission.beneficiary_id), amount),
            ],
        )  # fmt: skip
        Commission.objects.filter(pk=commission.pk).update(**update)
        done += 1
    return done


def book_split_orders(*, limit: int = 500) -> int:
    """Beat: pending commissions of orders split since they were earned get booked."""
    order_ids = list(
        Commission.objects.filter(booked=False, status=Status.PENDING, order__settlements__isnull=False)
        .values_list("order_id", flat=True)
        .distinct()
        .order_by("order_id")[:limit]
    )
    done = 0
    for order_id in order_ids:
        with transaction.atomic():
            done += book(orders_locks.lock_order(order_id))
    return done


# -- maturing -------------------------------------------------------------------------------------------


def mature_due(*, now=None, limit: int = 500) -> int:
    """Beat: booked commissions past their hold become available in the beneficiary's wallet."""
    now = now or timezone.now()
    book_split_orders(limit=limit)
    due = list(
        Commission.objects.filter(status=Status.PENDING, booked=True, available_at__lte=now)
        .order_by("pk")
        .values_list("pk", "order_id")[:limit]
    )
    done = 0
    for commission_id, order_id in due:
        with transaction.atomic():
            orders_locks.lock_order(order_id)
            commission = Commission.objects.select_for_update().get(pk=commission_id)
            if commission.status != Status.PENDING or not commission.booked:
                continue
            _make_available(commission)
            done += 1
    return done


def _make_available(commission: Commission) -> None:
    amount = commission.kept_fen
    if amount == 0:
        Commission.objects.filter(pk=commission.pk).update(status=Status.CLAWED_BACK)
        return
    # Debts from earlier claw-backs the wallet could not pay are netted first (oldest first).
    netted = 0
    for debt in (
        Commission.objects.select_for_update()
        .filter(beneficiary_id=commission.beneficiary_id, owed_fen__gt=0)
        .exclude(pk=commission.pk)
        .order_by("pk")
    ):
        take = min(debt.owed_fen, amount - netted)
        if take <= 0:
            break
        Commission.objects.filter(pk=debt.pk).update(owed_fen=debt.owed_fen - take)
        netted += take
    ledger.post(
        order_id=commission.order_id, kind="commission_payout", reference=commission.reference,
        lines=[ledger.Line(ledger.commission(commission.beneficiary_id), -amount), ledger.Line(ledger.WALLETS, amount)],
    )  # fmt: skip
    if amount - netted > 0:
        wallet.credit(
            user=commission.beneficiary, amount_fen=amount - netted, kind=WalletEntry.Kind.COMMISSION,
            reference=commission.reference, order=commission.order,
        )  # fmt: skip
    Commission.objects.filter(pk=commission.pk).update(status=Status.AVAILABLE, netted_fen=netted)


# -- claw-back ---------------------------------------------------------------------------------------------


def claw_back(order: Order, *, after_fen: int) -> None:
    """A refund took the order's refunded amount to ``after_fen`` (caller holds the order lock, the
    split was already reversed in proportion): each commission keeps its share of what is left."""
    commissions = list(Commission.objects.select_for_update().filter(order=order).order_by("pk"))
    if not commissions or order.total_fen <= 0:
        return
    book(order)
    for commission in commissions:
        commission.refresh_from_db()
    left = max(0, order.total_fen - min(after_fen, order.total_fen))
    targets = {
        c.pk: min(
            c.kept_fen, c.amount_fen - round_half_up(Decimal(c.amount_fen) * (order.total_fen - left) / order.total_fen)
        )
        for c in commissions
    }
    booked = [c for c in commissions if c.booked]
    if booked:
        # Never more than the platform still holds of the order (the split's reversal rounds on its own).
        room = ledger.balance(ledger.PLATFORM_FEE, order_id=order.pk) + sum(c.kept_fen for c in booked)
        excess = sum(targets[c.pk] for c in booked) - max(room, 0)
        for c in sorted(booked, key=lambda c: -c.level):  # level 2 gives way first
            cut = min(excess, targets[c.pk]) if excess > 0 else 0
            targets[c.pk] -= cut
            excess -= cut
    for commission in commissions:
        delta = commission.kept_fen - targets[commission.pk]
        if delta > 0:
            _claw(commission, delta=delta, kept=targets[commission.pk], step=after_fen)


def _claw(commission: Commission, *, delta: int, kept: int, step: int) -> None:
    reference = f"{commission.reference}R{step}"
    update: dict[str, object] = {"clawed_back_fen": commission.amount_fen - kept}
    if kept == 0 and commission.status == Status.PENDING:
        update["status"] = Status.CLAWED_BACK
    if commission.booked and commission.status == Status.PENDING:
        source = ledger.commission(commission.beneficiary_id)
    elif commission.status == Status.AVAILABLE:
        source = ledger.WALLETS
        Wallet.objects.get_or_create(user_id=commission.beneficiary_id)
        Wallet.objects.select_for_update().get(user_id=commission.beneficiary_id)
        balance = wallet.balance_fen(commission.beneficiary)
        taken = min(delta, max(balance, 0))
        if taken:
            wallet.debit(
                user=commission.beneficiary, amount_fen=taken, kind=WalletEntry.Kind.COMMISSION,
                reference=reference, order=commission.order, note="commission clawed back: refund",
            )  # fmt: skip
        update["owed_fen"] = commission.owed_fen + (delta - taken)
        if kept == 0:
            update["status"] = Status.CLAWED_BACK
    else:
        source = None  # not in the ledger yet: booking takes the lower amount
    if source is not None:
        ledger.post(
            order_id=commission.order_id, kind="commission_clawback", reference=reference,
            lines=[ledger.Line(source, -delta), ledger.Line(ledger.PLATFORM_FEE, delta)],
        )  # fmt: skip
    Commission.objects.filter(pk=commission.pk).update(**update)


# -- what the invite page shows ------------------------------------------------------------------------------


def totals(user: User) -> dict[str, int]:
    """Pending, available and clawed-back commission of ``user`` (one query)."""
    rows = (
        Commission.objects.filter(beneficiary=user)
        .values("status")
        .annotate(amount=Sum("amount_fen"), clawed=Sum("clawed_back_fen"), owed=Sum("owed_fen"))
    )
    result = {"pending": 0, "available": 0, "clawed_back": 0, "owed": 0}
    for row in rows:
        result["clawed_back"] += row["clawed"] or 0
        result["owed"] += row["owed"] or 0
        if row["status"] in (Status.PENDING, Status.AVAILABLE):
            result[row["status"]] += (row["amount"] or 0) - (row["clawed"] or 0)
    return result
