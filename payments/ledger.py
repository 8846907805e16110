"""The money ledger: append-only entries; balances and statements are sums.

Accounts and signs (amounts in fen, signed):

* ``buyer_paid`` — money in: +amount when a payment succeeds (duplicates too).
* ``refund`` — money out: +amount when a refund succeeds.
* ``unallocated`` — money of an order not split yet: +payment, −refund before the split, −gross
  when the order is split between the platform and its merchants.
* ``platform_fee`` — the platform's commission: +fee at the split, −fee share of a later refund.
* ``merchant:<id>:pending`` — earned by a merchant, not paid out (shown frozen while the hold runs).
* ``merchant:<id>:settled`` — paid out to the merchant through the provider.
* ``wallets`` — money paid in by wallet top-ups, now held in buyers' wallets (accounts.WalletEntry
  has the per-user balances): −unallocated, +wallets when a top-up order is credited. A wallet-paid
  order then counts as ``buyer_paid`` of its own (the ledger is per order; platform-wide cash is the
  gateway payments, ``provider != "balance"``).
* ``commission:<id>`` — a user's referral commission not yet available (marketing/referrals.py):
  ``platform_fee`` → ``commission:<id>`` when booked (kind ``commission``), → ``wallets`` when it
  becomes available (``commission_payout``); a refund gives back to ``platform_fee`` from either
  (``commission_clawback``).
* Commission withdrawals (marketing/withdrawals.py), posted without an order (``order_id`` NULL):
  ``wallets`` → ``withdrawals_held`` when asked for (kind ``withdrawal``), back when rejected
  (``withdrawal_rejected``), and when paid ``withdrawals_held`` → ``withdrawn`` (money out: the
  payee's share) + ``withdrawal_fees`` (the platform's fee) (``withdrawal_paid``). The order-less
  ``wallets`` balance is therefore negative: what left the wallets; check_ledger ties it to the
  withdrawals and the wallets' entries.

The invariant, per order: Σ buyer_paid − Σ refund = Σ of every other account. Each posting
(:func:`post`) keeps it by construction: its lines sum to zero on the "in − out = held" scale.
``kind`` says why an entry exists: ``payment``, ``refund``, ``split``, ``reversal``, ``payout``,
``commission``, ``commission_payout``, ``commission_clawback``. A posting is made once per
(account, kind, reference) (unique constraint).

Lock order: callers hold the Order row lock (Order → Payment → Settlement) while posting.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from payments.models import LedgerEntry

BUYER_PAID = "buyer_paid"
REFUND = "refund"
UNALLOCATED = "unallocated"
PLATFORM_FEE = "platform_fee"
WALLETS = "wallets"
WITHDRAWALS_HELD = "withdrawals_held"
WITHDRAWN = "withdrawn"
WITHDRAWAL_FEES = "withdrawal_fees"
MONEY_IN = {BUYER_PAID}
MONEY_OUT = {REFUND, WITHDRAWN}
# Postings that move the platform's commission to referrers and back (not part of the split).
COMMISSION_KINDS = {"commission", "commission_clawback"}


def merchant_pending(merchant_id: int) -> str:
    return f"merchant:{merchant_id}:pending"


def merchant_settled(merchant_id: int) -> str:
    return f"merchant:{merchant_id}:settled"


def commission(referrer_id: int) -> str:
    return f"commission:{referrer_id}"


@dataclass(frozen=True)
class Line:
    account: str
    amount_fen: int
    merchant_id: int | None = None


def weight(account: str) -> int:
    """How an account counts in "in − out − held = 0": +1 money in, −1 money out or held."""
    return 1 if account in MONEY_IN else -1


class UnbalancedPosting(ValueError):
    pass


def post(*, order_id: int | None, kind: str, reference: str, lines: list[Line]) -> list[LedgerEntry]:
    """Append one balanced posting. Refuses one that would break the per-order invariant.

    Idempotent: a posting whose (first account, kind, reference) exists already is not made again
    and ``[]`` is returned (the caller holds the order lock, so there is no race between check and
    insert; the unique constraint backs it).
    """
    lines = [line for line in lines if line.amount_fen != 0]
    if not lines:
        return []
    if sum(weight(line.account) * line.amount_fen for line in lines) != 0:
        raise UnbalancedPosting(f"{kind} {reference}: {lines}")
    if LedgerEntry.objects.filter(account=lines[0].account, kind=kind, reference=reference).exists():
        return []
    return LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                account=line.account,
                order_id=order_id,
                merchant_id=line.merchant_id,
                kind=kind,
                amount_fen=line.amount_fen,
                reference=reference,
            )
            for line in lines
        ]
    )


# -- selectors -------------------------------------------------------------------------------------


def balance(account: str, **filters) -> int:
    return LedgerEntry.objects.filter(account=account, **filters).aggregate(total=Sum("amount_fen"))["total"] or 0


def order_balances(order_id: int) -> dict[str, int]:
    rows = (
        LedgerEntry.objects.filter(order_id=order_id)
        .values("account")
        .annotate(total=Sum("amount_fen"))
        .order_by("account")
    )
    return {row["account"]: row["total"] for row in rows}
