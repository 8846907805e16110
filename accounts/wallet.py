"""The wallet: an append-only ledger of a user's balance (top-ups, payments, refunds, commissions,
withdrawals, adjustments). The balance is a sum, never negative, and safe under concurrent spends.

Every movement runs :func:`move`: it locks the user's :class:`~accounts.models.Wallet` row, reads the
last entry, and appends the next one with ``seq + 1`` and the new balance. The database backs each
promise on its own (see :class:`~accounts.models.WalletEntry`): a second movement computed from the
same balance collides on UNIQUE(wallet, seq); a negative balance violates a CHECK; the same
(kind, reference) twice is refused. A movement asked for twice returns the entry already made.

Lock order: callers that hold Order and Payment locks take the Wallet lock last
(Order → Payment → Wallet).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Sum

from accounts.models import User, Wallet, WalletEntry

Kind = WalletEntry.Kind


class InsufficientBalance(Exception):
    """The wallet does not hold enough for a debit; nothing was changed."""

    def __init__(self, *, balance_fen: int, wanted_fen: int):
        super().__init__(f"balance {balance_fen} fen, {wanted_fen} fen wanted")
        self.balance_fen = balance_fen
        self.wanted_fen = wanted_fen


def balance_fen(user: User) -> int:
    """The sum of the user's entries (0 for a user without a wallet)."""
    if user is None or not user.is_authenticated:
        return 0
    return WalletEntry.objects.filter(wallet__user=user).aggregate(total=Sum("amount_fen"))["total"] or 0


def move(
    *, user: User, amount_fen: int, kind: str, reference: str, order=None, note: str = "", actor=None
) -> WalletEntry:
    """Append one movement (+ credit, − debit). Idempotent by (kind, reference).

    Raises :class:`InsufficientBalance` when a debit would take the balance below zero.
    """
    if amount_fen == 0:
        raise ValueError("a wallet movement moves money")
    with transaction.atomic():
        wallet, _ = Wallet.objects.get_or_create(user=user)
        wallet = Wallet.objects.select_for_update().get(pk=wallet.pk)
        done = WalletEntry.objects.filter(kind=kind, reference=reference).first()
        if done is not None:
            if done.wallet_id != wallet.pk or done.amount_fen != amount_fen:
                raise ValueError(f"wallet {kind} {reference} was already recorded differently")
            return done
        last = WalletEntry.objects.filter(wallet=wallet).order_by("-seq").values("seq", "balance_after_fen").first()
        seq, before = (last["seq"], last["balance_after_fen"]) if last else (0, 0)
        if before + amount_fen < 0:
            raise InsufficientBalance(balance_fen=before, wanted_fen=-amount_fen)
        try:
            with transaction.atomic():
                return WalletEntry.objects.create(
                    wallet=wallet, seq=seq + 1, kind=kind, amount_fen=amount_fen,
                    balance_after_fen=before + amount_fen, reference=reference, order=order, note=note[:200],
                    created_by=actor,
                )  # fmt: skip
        except IntegrityError:
            # Only reachable without the row lock (SQLite has none): the same movement raced us.
            done = WalletEntry.objects.filter(kind=kind, reference=reference, wallet=wallet).first()
            if done is None:
                raise
            return done


def credit(*, user: User, amount_fen: int, kind: str, reference: str, **extra) -> WalletEntry:
    if amount_fen <= 0:
        raise ValueError("a credit is positive")
    return move(user=user, amount_fen=amount_fen, kind=kind, reference=reference, **extra)


def debit(*, user: User, amount_fen: int, kind: str, reference: str, **extra) -> WalletEntry:
    if amount_fen <= 0:
        raise ValueError("a debit is positive")
    return move(user=user, amount_fen=-amount_fen, kind=kind, reference=reference, **extra)


def find(*, kind: str, reference: str) -> WalletEntry | None:
    return WalletEntry.objects.filter(kind=kind, reference=reference).first()
