"""Commission withdrawal (提现): a user takes commission out of their wallet to their Alipay account.

* Withdrawable: the commission credited to the user's wallet (wallet entries of kind ``commission``,
  net of claw-backs) less what was already withdrawn or is being withdrawn (every request not
  rejected), and never more than the wallet's balance (commission spent on orders is gone).
* Fee (``ReferralProgram``): ``max(minimum fee, round_half_up(amount × percent / 100) + fixed fee)``;
  the payee receives amount − fee, which must stay positive. The amount must reach
  ``min_withdrawal_fen``.
* Asking (:func:`request`): under the wallet lock the amount is debited from the wallet (kind
  ``withdrawal``, reference = ``out_biz_no``) and posted ``wallets`` → ``withdrawals_held``, so it
  cannot be spent or withdrawn twice. The form carries a one-time key; UNIQUE(user, request_key)
  makes a double click one request.
* Deciding (operators, admin): :func:`reject` gives the amount back (wallet credit + ledger
  ``withdrawals_held`` → ``wallets``); :func:`approve` queues the payout; :func:`mark_paid_offline`
  records a payment made outside (bank, cash) with its reference.
* Paying (:func:`pay`, Celery ``marketing.tasks.pay_withdrawal``, retried): ``alipay.fund.trans.uni.transfer``
  with ``out_biz_no`` = ``WD<id>``, the same on every attempt, so Alipay pays at most once; the gateway
  is called outside any row lock. Success posts ``withdrawals_held`` → ``withdrawn`` + ``withdrawal_fees``.
  A failure leaves the request ``failed`` with the error; when the outcome is unknown (no answer, busy,
  processing) only a retry is allowed (never a rejection, which would return money Alipay may have paid).

Lock order: Wallet → Withdrawal (request, reject); Withdrawal alone (approve, pay, mark paid).
Neither is ever taken with an Order lock held.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import wallet
from accounts.models import User, Wallet, WalletEntry
from kameng.money import round_half_up
from kameng.tasks import enqueue_on_commit
from marketing.models import ReferralProgram, Withdrawal
from payments import ledger

Status = Withdrawal.Status
HOLDING = [Status.REQUESTED, Status.APPROVED, Status.FAILED]
NOT_REJECTED = [*HOLDING, Status.PAID]


class WithdrawalError(Exception):
    """The request or decision is refused; the message is for the user or operator."""


def new_key() -> str:
    return secrets.token_urlsafe(24)


def fee_fen(amount_fen: int, program: ReferralProgram) -> int:
    """The fee on withdrawing ``amount_fen`` (see the module doc)."""
    percent = round_half_up(Decimal(amount_fen) * program.withdrawal_fee_percent / 100)
    return max(program.withdrawal_fee_min_fen, percent + program.withdrawal_fee_fixed_fen)


@dataclass(frozen=True)
class Summary:
    commission_fen: int  # credited to the wallet as commission, net of claw-backs
    withdrawn_fen: int  # paid out
    in_progress_fen: int  # asked for, not paid or rejected yet
    balance_fen: int  # the wallet's balance
    withdrawable_fen: int


def summary(user: User) -> Summary:
    """What the user may withdraw (two queries)."""
    entries = WalletEntry.objects.filter(wallet__user=user).aggregate(
        balance=Sum("amount_fen"), commission=Sum("amount_fen", filter=Q(kind=WalletEntry.Kind.COMMISSION))
    )
    asked = Withdrawal.objects.filter(user=user).aggregate(
        paid=Sum("amount_fen", filter=Q(status=Status.PAID)),
        holding=Sum("amount_fen", filter=Q(status__in=HOLDING)),
    )
    commission, balance = entries["commission"] or 0, entries["balance"] or 0
    paid, holding = asked["paid"] or 0, asked["holding"] or 0
    withdrawable = max(0, min(commission - paid - holding, balance))
    return Summary(commission, paid, holding, balance, withdrawable)


def _lock_wallet(user_id: int) -> None:
    Wallet.objects.get_or_create(user_id=user_id)
    Wallet.objects.select_for_update().get(user_id=user_id)


def request(*, user: User, amount_fen: int, alipay_account: str, real_name: str, key: str) -> Withdrawal:
    """Ask to withdraw ``amount_fen``; the amount is held at once. The same ``key`` twice: one request."""
    alipay_account, real_name = alipay_account.strip(), real_name.strip()
    if not alipay_account or not real_name:
        raise WithdrawalError(_("Enter your Alipay account and your real name."))
    if not key:
        raise WithdrawalError(_("The form expired: reload the page and try again."))
    try:
        with transaction.atomic():
            _lock_wallet(user.pk)
            done = Withdrawal.objects.filter(user=user, request_key=key).first()
            if done is not None:
                return done
            program = ReferralProgram.load()
            if amount_fen < max(program.min_withdrawal_fen, 1):
                raise WithdrawalError(_("The amount is below the minimum withdrawal."))
            if amount_fen > summary(user).withdrawable_fen:
                raise WithdrawalError(_("That is more than the commission you can withdraw."))
            fee = fee_fen(amount_fen, program)
            if fee >= amount_fen:
                raise WithdrawalError(_("The fee would take the whole amount: withdraw more."))
            made = Withdrawal.objects.create(
                user=user, request_key=key, amount_fen=amount_fen, fee_fen=fee, alipay_account=alipay_account,
                real_name=real_name,
            )  # fmt: skip
            wallet.debit(
                user=user, amount_fen=amount_fen, kind=WalletEntry.Kind.WITHDRAWAL, reference=made.out_biz_no,
                note="commission withdrawal",
            )  # fmt: skip
            ledger.post(
                order_id=None, kind="withdrawal", reference=made.out_biz_no,
                lines=[ledger.Line(ledger.WALLETS, -amount_fen), ledger.Line(ledger.WITHDRAWALS_HELD, amount_fen)],
            )  # fmt: skip
            return made
    except IntegrityError:
        # Only without row locks (SQLite): the same key raced us; the database kept one.
        done = Withdrawal.objects.filter(user=user, request_key=key).first()
        if done is None:
            raise
        return done


def _locked(withdrawal_id: int) -> Withdrawal:
    return Withdrawal.objects.select_for_update().get(pk=withdrawal_id)


def _decidable(found: Withdrawal) -> bool:
    """Rejecting or paying offline: only when Alipay surely did not pay it."""
    return found.status == Status.REQUESTED or (found.status == Status.FAILED and not found.outcome_unknown)


def reject(*, withdrawal: Withdrawal, reason: str, actor) -> Withdrawal:
    """Refuse the request; the amount goes back to the wallet."""
    reason = reason.strip()
    if not reason:
        raise WithdrawalError(_("Say why the withdrawal is rejected."))
    with transaction.atomic():
        _lock_wallet(withdrawal.user_id)
        found = _locked(withdrawal.pk)
        if not _decidable(found):
            raise WithdrawalError(_("Only a requested withdrawal, or one Alipay surely did not pay, can be rejected."))
        wallet.credit(
            user=found.user, amount_fen=found.amount_fen, kind=WalletEntry.Kind.WITHDRAWAL,
            reference=f"{found.out_biz_no}-back", note="withdrawal rejected", actor=actor,
        )  # fmt: skip
        ledger.post(
            order_id=None, kind="withdrawal_rejected", reference=found.out_biz_no,
            lines=[
                ledger.Line(ledger.WITHDRAWALS_HELD, -found.amount_fen),
                ledger.Line(ledger.WALLETS, found.amount_fen),
            ],
        )  # fmt: skip
        found.status, found.reason = Status.REJECTED, reason[:200]
        found.decided_by, found.decided_at = actor, timezone.now()
        found.save(update_fields=["status", "reason", "decided_by", "decided_at"])
        return found


def _post_paid(found: Withdrawal) -> None:
    ledger.post(
        order_id=None, kind="withdrawal_paid", reference=found.out_biz_no,
        lines=[
            ledger.Line(ledger.WITHDRAWALS_HELD, -found.amount_fen),
            ledger.Line(ledger.WITHDRAWN, found.payee_fen),
            ledger.Line(ledger.WITHDRAWAL_FEES, found.fee_fen),
        ],
    )  # fmt: skip


def mark_paid_offline(*, withdrawal: Withdrawal, reference: str, actor) -> Withdrawal:
    reference = reference.strip()
    if not reference:
        raise WithdrawalError(_("Enter the reference of the offline payment."))
    with transaction.atomic():
        found = _locked(withdrawal.pk)
        if not _decidable(found):
            raise WithdrawalError(
                _("Only a requested withdrawal, or one Alipay surely did not pay, can be paid offline.")
            )
        _post_paid(found)
        now = timezone.now()
        found.status, found.method, found.offline_reference = Status.PAID, Withdrawal.Method.OFFLINE, reference[:100]
        found.decided_by, found.decided_at, found.paid_at = actor, found.decided_at or now, now
        found.save(update_fields=["status", "method", "offline_reference", "decided_by", "decided_at", "paid_at"])
        return found


def approve(*, withdrawal: Withdrawal, actor) -> Withdrawal:
    """Approve (or retry a failed payout): the Alipay transfer runs in a Celery task after commit."""
    from marketing.tasks import pay_withdrawal
    from payments.providers.alipay import AlipayProvider

    if not AlipayProvider.is_configured():
        raise WithdrawalError(_("Alipay is not configured: pay it offline and mark it paid."))
    with transaction.atomic():
        found = _locked(withdrawal.pk)
        if found.status not in (Status.REQUESTED, Status.FAILED):
            raise WithdrawalError(_("Only a requested or failed withdrawal can be approved."))
        found.status, found.queued_at = Status.APPROVED, timezone.now()
        if found.decided_by_id is None:
            found.decided_by, found.decided_at = actor, timezone.now()
        found.save(update_fields=["status", "queued_at", "decided_by", "decided_at"])
        enqueue_on_commit(pay_withdrawal, found.pk)
        return found


STUCK_AFTER = timedelta(hours=1)  # longer than the task's longest backoff (32 minutes)


def requeue_stuck(*, now=None, limit: int = 200) -> int:
    """Beat: approved withdrawals whose payout task was lost (broker down, worker killed) are queued
    again. Harmless if the task was only late: paying is idempotent (status under lock, same out_biz_no)."""
    from marketing.tasks import pay_withdrawal

    cutoff = (now or timezone.now()) - STUCK_AFTER
    ids = list(
        Withdrawal.objects.filter(status=Status.APPROVED, queued_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for withdrawal_id in ids:
        Withdrawal.objects.filter(pk=withdrawal_id, status=Status.APPROVED).update(queued_at=timezone.now())
        pay_withdrawal.apply_async((withdrawal_id,))
    return len(ids)


def pay(*, withdrawal_id: int) -> str:
    """Send the approved withdrawal's transfer (idempotent; see the module doc). Returns its status."""
    from payments.providers import alipay

    with transaction.atomic():
        found = _locked(withdrawal_id)
        if found.status != Status.APPROVED:
            return found.status
        found.attempts += 1
        found.save(update_fields=["attempts"])
    result = alipay.transfer(
        out_biz_no=found.out_biz_no, amount_fen=found.payee_fen, login_id=found.alipay_account,
        real_name=found.real_name, title=f"{settings.SHOP_NAME} commission"[:60],
    )  # fmt: skip
    with transaction.atomic():
        found = _locked(withdrawal_id)
        if found.status != Status.APPROVED:
            return found.status
        if result.succeeded:
            _post_paid(found)
            found.status, found.method, found.paid_at = Status.PAID, Withdrawal.Method.ALIPAY, timezone.now()
            found.gateway_order_id, found.last_error, found.outcome_unknown = result.order_id[:64], "", False
        else:
            found.status, found.last_error, found.outcome_unknown = Status.FAILED, result.failure[:300], result.unknown
        found.save(update_fields=["status", "method", "paid_at", "gateway_order_id", "last_error", "outcome_unknown"])
        return found.status


def violations():
    """check_ledger's part for withdrawals: the ledger, the requests and the wallets' entries agree."""
    by_status = {
        row["status"]: (row["amount"] or 0, row["fee"] or 0)
        for row in Withdrawal.objects.values("status").annotate(amount=Sum("amount_fen"), fee=Sum("fee_fen"))
    }
    holding = sum(by_status.get(s, (0, 0))[0] for s in HOLDING)
    paid, fees = by_status.get(Status.PAID, (0, 0))
    expected = {
        ledger.WALLETS: -(holding + paid),
        ledger.WITHDRAWALS_HELD: holding,
        ledger.WITHDRAWN: paid - fees,
        ledger.WITHDRAWAL_FEES: fees,
    }
    for account, amount in expected.items():
        found = ledger.balance(account, order_id__isnull=True)
        if found != amount:
            yield account, f"ledger {found} fen, withdrawals {amount} fen"
    taken = (
        WalletEntry.objects.filter(kind=WalletEntry.Kind.WITHDRAWAL, reference__startswith="WD").aggregate(
            total=Sum("amount_fen")
        )["total"]
        or 0
    )
    if -taken != holding + paid:
        yield "wallet entries", f"wallets gave {-taken} fen, withdrawals hold or paid {holding + paid} fen"
