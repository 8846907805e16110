"""Read-only views of the ledger and settlements: balances, merchant totals, invariants."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts import points
from payments import ledger
from payments.models import LedgerEntry, Payment, Settlement


def paying_payment(order) -> Payment | None:
    """The payment that paid the order (the first successful one; later ones are duplicates)."""
    return order.payments.filter(status=Payment.Status.PAID).order_by("paid_at", "pk").first()


def merchant_totals(merchant_id: int) -> dict[str, int]:
    """What a merchant sees: frozen (hold running), pending (due, not paid out), settled, reversed."""
    now = timezone.now()
    rows = Settlement.objects.filter(merchant_id=merchant_id)
    unpaid = Q(
        status__in=[
            Settlement.Status.FROZEN,
            Settlement.Status.PENDING,
            Settlement.Status.SETTLING,
            Settlement.Status.FAILED,
        ]
    )
    frozen = rows.filter(unpaid, due_at__gt=now).aggregate(total=Sum("merchant_fen") - Sum("reversed_merchant_fen"))
    pending = rows.filter(unpaid, due_at__lte=now).aggregate(total=Sum("merchant_fen") - Sum("reversed_merchant_fen"))
    return {
        "frozen": frozen["total"] or 0,
        "pending": pending["total"] or 0,
        "settled": ledger.balance(ledger.merchant_settled(merchant_id)),
        "reversed": rows.aggregate(total=Sum("reversed_merchant_fen"))["total"] or 0,
    }


def platform_totals() -> dict[str, int]:
    """What operators see: commission income and money not split or not paid out yet."""
    pending = LedgerEntry.objects.filter(account__startswith="merchant:", account__endswith=":pending")
    return {
        "platform_fee": ledger.balance(ledger.PLATFORM_FEE),
        "unallocated": ledger.balance(ledger.UNALLOCATED),
        "unsettled": pending.aggregate(total=Sum("amount_fen"))["total"] or 0,
    }


def merchant_statement(merchant_id: int, *, start, end):
    """The merchant's ledger lines in [start, end), oldest first."""
    return LedgerEntry.objects.filter(merchant_id=merchant_id, created_at__gte=start, created_at__lt=end).order_by(
        "created_at", "pk"
    )


def merchant_balance_before(merchant_id: int, *, start) -> int:
    """The sum of the merchant's ledger lines before ``start``: a statement's opening balance."""
    return (
        LedgerEntry.objects.filter(merchant_id=merchant_id, created_at__lt=start).aggregate(total=Sum("amount_fen"))[
            "total"
        ]
        or 0
    )


def platform_commission(*, start, end) -> int:
    """Commission the platform booked (net of reversals) in [start, end)."""
    return (
        LedgerEntry.objects.filter(account=ledger.PLATFORM_FEE, created_at__gte=start, created_at__lt=end).aggregate(
            total=Sum("amount_fen")
        )["total"]
        or 0
    )


# -- invariants (python manage.py check_ledger) ------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {self.detail}"


# Checks of apps above payments (they register from their AppConfig.ready): each yields
# (what, detail) pairs, reported as ``name`` violations. marketing: commission withdrawals.
EXTRA_CHECKS: dict[str, Callable[[], Iterable[tuple[str, str]]]] = {}


def register_check(name: str, check: Callable[[], Iterable[tuple[str, str]]]) -> None:
    EXTRA_CHECKS[name] = check


def violations() -> Iterator[Violation]:
    """Every broken invariant of the ledger and settlements, cheapest checks first."""
    postings: dict[tuple[str, str], int] = defaultdict(int)
    per_order: dict[int | None, int] = defaultdict(int)
    balances: dict[tuple[int | None, str], int] = defaultdict(int)
    to_referrers: dict[int | None, int] = defaultdict(int)  # platform_fee moved to referral commission
    for entry in LedgerEntry.objects.values("order_id", "account", "kind", "reference", "amount_fen").iterator():
        weighted = ledger.weight(entry["account"]) * entry["amount_fen"]
        postings[(entry["kind"], entry["reference"])] += weighted
        per_order[entry["order_id"]] += weighted
        balances[(entry["order_id"], entry["account"])] += entry["amount_fen"]
        if entry["account"] == ledger.PLATFORM_FEE and entry["kind"] in ledger.COMMISSION_KINDS:
            to_referrers[entry["order_id"]] -= entry["amount_fen"]
    for (kind, reference), total in sorted(postings.items()):
        if total:
            yield Violation("posting_unbalanced", f"{kind} {reference} is off by {total} fen")
    for order_id, total in sorted(per_order.items(), key=lambda item: item[0] or 0):
        if total:
            yield Violation("order_money_mismatch", f"order {order_id}: in − out − held = {total} fen")
    for (order_id, account), total in sorted(balances.items(), key=lambda item: (item[0][0] or 0, item[0][1])):
        # Order-less "wallets": what withdrawals took out of the wallets (checked by marketing's check).
        if order_id is None and account == ledger.WALLETS:
            continue
        if account not in ledger.MONEY_IN | ledger.MONEY_OUT and total < 0:
            yield Violation("negative_balance", f"order {order_id}: {account} is {total} fen")
        if account == ledger.REFUND and total > balances.get((order_id, ledger.BUYER_PAID), 0):
            yield Violation("refund_exceeds_payment", f"order {order_id}: refunded {total} fen")
    paid = dict(Payment.objects.filter(status=Payment.Status.PAID).values_list("out_trade_no", "amount_fen"))
    for posted in LedgerEntry.objects.filter(account=ledger.BUYER_PAID, kind="payment").values(
        "reference", "amount_fen"
    ):
        if paid.get(posted["reference"]) != posted["amount_fen"]:
            yield Violation(
                "payment_mismatch",
                f"{posted['reference']}: ledger {posted['amount_fen']} fen, payment {paid.get(posted['reference'])}",
            )
    payouts = dict(
        LedgerEntry.objects.filter(kind="payout", account__endswith=":settled")
        .values("reference")
        .annotate(n=Count("pk"))
        .values_list("reference", "n")
    )
    fee_by_order: dict[int, int] = defaultdict(int)
    for settlement in Settlement.objects.all().iterator():
        number = settlement.out_request_no
        if settlement.gross_fen != settlement.fee_fen + settlement.merchant_fen:
            yield Violation("split_does_not_add_up", f"{number}: {settlement.gross_fen} ≠ fee + merchant")
        expected = 1 if settlement.status == Settlement.Status.SETTLED else 0
        if payouts.get(number, 0) > expected:
            yield Violation(
                "settled_twice" if expected else "payout_without_settlement", f"{number}: {payouts[number]} payouts"
            )
        held = balances.get((settlement.order_id, ledger.merchant_pending(settlement.merchant_id)), 0) + balances.get(
            (settlement.order_id, ledger.merchant_settled(settlement.merchant_id)), 0
        )
        if held != settlement.remaining_merchant_fen:
            yield Violation(
                "merchant_amount_mismatch",
                f"{number}: ledger {held} fen, settlement {settlement.remaining_merchant_fen}",
            )
        fee_by_order[settlement.order_id] += settlement.platform_net_fen - settlement.reversed_fee_fen
    for order_id, fee in sorted(fee_by_order.items()):
        # The split's share, before what the platform passed on as referral commission.
        if balances.get((order_id, ledger.PLATFORM_FEE), 0) + to_referrers[order_id] != fee:
            yield Violation(
                "platform_fee_mismatch",
                f"order {order_id}: ledger {balances.get((order_id, ledger.PLATFORM_FEE), 0)} fen, settlements {fee}",
            )
    # Points are a ledger of their own (accounts/points.py): each buyer's entries chain.
    for account_id, problem in points.ledger_violations():
        yield Violation("points_ledger_broken", f"points account {account_id}: {problem}")
    for name, check in sorted(EXTRA_CHECKS.items()):
        for what, detail in check():
            yield Violation(name, f"{what}: {detail}")
