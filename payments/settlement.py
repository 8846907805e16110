"""Split settlement: the platform keeps its commission, merchants get the rest, every fen accounted.

* :func:`compute_split` (pure): per merchant, ``gross`` = what the buyer paid for the merchant's
  items after discounts, plus any *platform-funded* discount on them; ``fee`` =
  round_half_up(gross × commission rate); merchant amount = gross − fee. Discounts are charged to
  whoever funds them (``orders.pricing.Adjustment.funded_by``): a merchant-funded discount simply
  lowers the merchant's gross (the platform's fee shrinks with it); a platform-funded one does not
  lower the gross — the merchant is credited as if the buyer had paid it, and the platform's share
  of the order is ``fee − platform-funded discount`` (it pays the coupon out of its commission).
  Each order item records its platform-funded share (``OrderItem.platform_funded_fen``, from the
  quote); the pricing engine keeps it within the platform's commission on the line, so the
  platform's share is never negative and a merchant is never owed more than its goods were paid.
* :func:`create_due_settlements` (beat): orders delivered with no settlement yet get one per
  merchant, posted to the ledger as a split; due after ``SETTLEMENT_HOLD_DAYS`` (frozen until then).
* :func:`execute_due_settlements` (beat): each due settlement is claimed under its row lock, paid
  out through the provider that took the payment *outside* any transaction (idempotent at the
  gateway by ``out_request_no``), and recorded. Failures are retried with back-off; a claim that
  never got an answer (crash, timeout) is sent again with the same number; after
  :data:`MAX_ATTEMPTS` operators are e-mailed and the settlement is ``failed``.
* :func:`reverse_for_refund` (called from ``record_refund_result``): a successful refund of the
  order's paying payment reverses the split proportionally (cumulative targets, rounded half up,
  the last settlement takes the remainder, so totals stay exact to the fen).

Lock order: Order → Payment → Settlement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from kameng.money import round_half_up
from orders import locks as orders_locks
from orders.models import Order, OrderItem
from payments import ledger, locks, providers
from payments.models import LedgerEntry, Payment, Refund, Settlement
from payments.selectors import paying_payment

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
CLAIM_TIMEOUT = timedelta(minutes=10)  # a claim without an answer after this is sent again


# -- the split (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitLine:
    merchant_id: int
    rate: Decimal
    total_fen: int  # what the buyer paid for the line (after every discount)
    platform_funded_fen: int = 0  # part of the line's discount the platform pays for


@dataclass(frozen=True)
class Split:
    merchant_id: int
    paid_fen: int  # what buyers paid for this merchant's lines
    gross_fen: int  # what the merchant is credited with (paid + platform-funded discounts)
    fee_fen: int
    merchant_fen: int

    @property
    def platform_net_fen(self) -> int:
        """What the platform keeps of the money paid (negative: it pays for its coupon)."""
        return self.paid_fen - self.merchant_fen


def compute_split(lines: list[SplitLine]) -> list[Split]:
    """Split an order's lines per merchant (in merchant id order). Parts add up to the whole."""
    by_merchant: dict[int, list[SplitLine]] = {}
    for line in lines:
        if line.total_fen < 0 or line.platform_funded_fen < 0:
            raise ValueError(f"negative amount in {line}")
        if not Decimal(0) <= line.rate < Decimal(1):
            raise ValueError(f"commission rate out of range in {line}")
        by_merchant.setdefault(line.merchant_id, []).append(line)
    splits = []
    for merchant_id in sorted(by_merchant):
        group = by_merchant[merchant_id]
        rates = {line.rate for line in group}
        if len(rates) != 1:
            raise ValueError(f"merchant {merchant_id} has several commission rates in one order")
        paid = sum(line.total_fen for line in group)
        gross = paid + sum(line.platform_funded_fen for line in group)
        fee = round_half_up(Decimal(gross) * rates.pop())
        splits.append(Split(merchant_id, paid_fen=paid, gross_fen=gross, fee_fen=fee, merchant_fen=gross - fee))
    return splits


def reversal_targets(
    settlements: list[tuple[int, int, int]], *, total_fen: int, refunded_fen: int
) -> list[tuple[int, int]]:
    """Cumulative (platform, merchant) to have reversed per settlement once ``refunded_fen`` of an
    order of ``total_fen`` went back. ``settlements`` are (paid, platform, merchant) in a fixed
    order: what buyers paid for the merchant's lines, and how that money is shared (the platform's
    part is its fee less the discounts it funded, so paid = platform + merchant).

    Each settlement's share is round_half_up(refunded × paid / total); the last takes the
    remainder, so the shares sum to ``refunded_fen`` exactly; within a share the platform part is
    round_half_up(share × platform / paid) and the merchant part the rest. At a full refund every
    settlement is reversed exactly.
    """
    if not 0 <= refunded_fen <= total_fen:
        raise ValueError(f"refunded {refunded_fen} of {total_fen}")
    targets = []
    left = refunded_fen
    for index, (paid, fee, _merchant) in enumerate(settlements):
        if index == len(settlements) - 1:
            share = left
        else:
            share = min(left, round_half_up(Decimal(refunded_fen) * paid / total_fen) if total_fen else 0)
        share = min(share, paid)
        left -= share
        fee_part = round_half_up(Decimal(share) * fee / paid) if paid else 0
        targets.append((fee_part, share - fee_part))
    return targets


# -- creating settlements --------------------------------------------------------------------------


def post_payment(payment: Payment) -> None:
    """Money in: the payment's ledger posting (idempotent; caller holds the order lock)."""
    ledger.post(
        order_id=payment.order_id, kind="payment", reference=payment.out_trade_no,
        lines=[ledger.Line(ledger.BUYER_PAID, payment.amount_fen), ledger.Line(ledger.UNALLOCATED, payment.amount_fen)],
    )  # fmt: skip


def post_paid_payments(*, limit: int = 500) -> int:
    """Backstop: paid payments without their ledger posting get it (beat)."""
    posted = Exists(
        LedgerEntry.objects.filter(account=ledger.BUYER_PAID, kind="payment", reference=OuterRef("out_trade_no"))
    )
    done = 0
    for payment_id, order_id in (
        Payment.objects.filter(status=Payment.Status.PAID).exclude(posted).values_list("pk", "order_id")[:limit]
    ):
        with transaction.atomic():
            orders_locks.lock_order(order_id)
            post_payment(Payment.objects.get(pk=payment_id))
            done += 1
    return done


def _request_no(order: Order, merchant_id: int) -> str:
    return f"S{order.pk:010d}M{merchant_id:08d}"


def ensure_settlements(order: Order) -> list[Settlement]:
    """Split a delivered order (caller holds the order lock). Idempotent."""
    existing = list(order.settlements.order_by("merchant_id"))
    if existing or order.delivered_at is None:
        return existing
    payment = paying_payment(order)
    if payment is None:
        return []
    for paid in order.payments.filter(status=Payment.Status.PAID):
        post_payment(paid)
    items = OrderItem.objects.filter(order=order).select_related("merchant")
    splits = compute_split(
        [
            SplitLine(item.merchant_id, item.merchant.commission_rate, item.total_fen, item.platform_funded_fen)
            for item in items
        ]
    )
    if sum(split.paid_fen for split in splits) != payment.amount_fen:
        # Never expected (order_total_adds_up); not raised, so a refund being recorded is not blocked.
        logger.error("order %s: items total differs from the payment; not split, operators must look", order.number)
        return []
    now = timezone.now()
    due_at = now + timedelta(days=settings.SETTLEMENT_HOLD_DAYS)
    created = []
    for split in splits:
        settlement = Settlement.objects.create(
            order=order, merchant_id=split.merchant_id, payment=payment, gross_fen=split.gross_fen,
            fee_fen=split.fee_fen, merchant_fen=split.merchant_fen, due_at=due_at, provider=payment.provider,
            platform_funded_fen=split.gross_fen - split.paid_fen,
            out_request_no=_request_no(order, split.merchant_id),
            status=Settlement.Status.FROZEN if due_at > now else Settlement.Status.PENDING,
        )  # fmt: skip
        ledger.post(
            order_id=order.pk, kind="split", reference=settlement.out_request_no,
            lines=[
                ledger.Line(ledger.UNALLOCATED, -split.paid_fen),
                ledger.Line(ledger.PLATFORM_FEE, split.paid_fen - split.merchant_fen),
                ledger.Line(ledger.merchant_pending(split.merchant_id), split.merchant_fen, split.merchant_id),
            ],
        )  # fmt: skip
        created.append(settlement)
    return created


def post_top_ups(*, limit: int = 500) -> int:
    """Credited wallet top-ups move their money from ``unallocated`` to ``wallets`` (no merchant split)."""
    posted = Exists(LedgerEntry.objects.filter(kind="top_up", reference=OuterRef("number")))
    paid = Exists(Payment.objects.filter(order=OuterRef("pk"), status=Payment.Status.PAID))
    done = 0
    for order_id in (
        Order.objects.filter(kind=Order.Kind.TOP_UP, delivered_at__isnull=False)
        .filter(paid)
        .exclude(posted)
        .values_list("pk", flat=True)[:limit]
    ):
        with transaction.atomic():
            order = orders_locks.lock_order(order_id)
            for payment in order.payments.filter(status=Payment.Status.PAID):
                post_payment(payment)
            ledger.post(
                order_id=order.pk, kind="top_up", reference=order.number,
                lines=[ledger.Line(ledger.UNALLOCATED, -order.total_fen), ledger.Line(ledger.WALLETS, order.total_fen)],
            )  # fmt: skip
            done += 1
    return done


def post_memberships(*, limit: int = 500) -> int:
    """Granted annual-membership orders are the platform's income: their money moves from
    ``unallocated`` to ``platform_fee`` (no merchant split). What a refund already took out of
    ``unallocated`` before this posting is not moved; refunds after it come out of ``platform_fee``
    (:func:`reverse_for_refund`)."""
    posted = Exists(LedgerEntry.objects.filter(kind="membership", reference=OuterRef("number")))
    paid = Exists(Payment.objects.filter(order=OuterRef("pk"), status=Payment.Status.PAID))
    done = 0
    for order_id in (
        Order.objects.filter(kind=Order.Kind.MEMBERSHIP, delivered_at__isnull=False, refunded_fen__lt=F("total_fen"))
        .filter(paid)
        .exclude(posted)
        .values_list("pk", flat=True)[:limit]
    ):
        with transaction.atomic():
            order = orders_locks.lock_order(order_id)
            for payment in order.payments.filter(status=Payment.Status.PAID):
                post_payment(payment)
            amount = order.total_fen - order.refunded_fen
            ledger.post(
                order_id=order.pk, kind="membership", reference=order.number,
                lines=[ledger.Line(ledger.UNALLOCATED, -amount), ledger.Line(ledger.PLATFORM_FEE, amount)],
            )  # fmt: skip
            done += 1
    return done


def _membership_posted(order: Order) -> bool:
    return LedgerEntry.objects.filter(kind="membership", reference=order.number).exists()


def create_due_settlements(*, limit: int = 500) -> int:
    """Delivered orders without settlements get them (beat; safe to run concurrently)."""
    post_paid_payments(limit=limit)
    post_top_ups(limit=limit)
    post_memberships(limit=limit)
    has = Exists(Settlement.objects.filter(order=OuterRef("pk")))
    paid = Exists(Payment.objects.filter(order=OuterRef("pk"), status=Payment.Status.PAID))
    ids = list(
        Order.objects.filter(delivered_at__isnull=False, kind=Order.Kind.GOODS)
        .filter(paid)
        .exclude(has)
        .values_list("pk", flat=True)[:limit]
    )
    created = 0
    for order_id in ids:
        with transaction.atomic():
            order = orders_locks.lock_order(order_id)
            if not order.settlements.exists():
                created += len(ensure_settlements(order))
    return created


# -- refunds ---------------------------------------------------------------------------------------


def reverse_for_refund(*, refund: Refund, order: Order) -> None:
    """Post a successful refund to the ledger (caller holds the order and payment locks).

    A refund of the order's paying payment after delivery reverses the split proportionally;
    a duplicate payment's or an undelivered order's refund comes out of ``unallocated``.
    """
    post_payment(refund.payment)
    if order.kind == Order.Kind.MEMBERSHIP:
        # Never split: the money is in platform_fee once posted (post_memberships), else unallocated.
        source = (
            ledger.PLATFORM_FEE
            if refund.reason != Refund.Reason.DUPLICATE_PAYMENT and _membership_posted(order)
            else ledger.UNALLOCATED
        )
        ledger.post(
            order_id=order.pk, kind="refund", reference=refund.out_refund_no,
            lines=[ledger.Line(ledger.REFUND, refund.amount_fen), ledger.Line(source, -refund.amount_fen)],
        )  # fmt: skip
        return
    settlements = ensure_settlements(order) if _reverses_the_split(refund, order) else []
    if not settlements:
        ledger.post(
            order_id=order.pk, kind="refund", reference=refund.out_refund_no,
            lines=[ledger.Line(ledger.REFUND, refund.amount_fen), ledger.Line(ledger.UNALLOCATED, -refund.amount_fen)],
        )  # fmt: skip
        return
    if LedgerEntry.objects.filter(account=ledger.REFUND, kind="refund", reference=refund.out_refund_no).exists():
        return
    lines = [ledger.Line(ledger.REFUND, refund.amount_fen)]
    fee_delta = 0
    for part in _plan_reversal(refund=refund, order=order, settlements=locks.lock_settlements(order)):
        settlement, merchant_target = part.settlement, part.merchant_target
        fee_delta += part.fee_target - settlement.reversed_fee_fen
        if part.from_pending:
            lines.append(
                ledger.Line(ledger.merchant_pending(settlement.merchant_id), -part.from_pending, settlement.merchant_id)
            )
        if part.from_payout:
            lines.append(
                ledger.Line(ledger.merchant_settled(settlement.merchant_id), -part.from_payout, settlement.merchant_id)
            )
        update: dict[str, object] = {"reversed_fee_fen": part.fee_target, "reversed_merchant_fen": merchant_target}
        if merchant_target == settlement.merchant_fen and settlement.status in (
            Settlement.Status.FROZEN,
            Settlement.Status.PENDING,
        ):
            update["status"] = Settlement.Status.REVERSED
        Settlement.objects.filter(pk=settlement.pk).update(**update)
    lines.append(ledger.Line(ledger.PLATFORM_FEE, -fee_delta))
    ledger.post(order_id=order.pk, kind="refund", reference=refund.out_refund_no, lines=lines)
    # Provider side: what this refund takes back from money already paid out was returned by the
    # merchants at the gateway before the refund went through (planned_returns, execute_refund).


def planned_returns(refund: Refund) -> list[dict]:
    """What each merchant must give back at the gateway for ``refund`` to go through: the part of
    its share of this refund that was already paid out (Alipay ``refund_royalty_parameters``,
    WeChat ``profitsharing_return``). The same proportional rule as :func:`reverse_for_refund`,
    computed before the refund from the state now (reads only). Empty for refunds that take
    nothing back from a payout (duplicates, undelivered orders, money still pending)."""
    order = refund.order
    if not _reverses_the_split(refund, order):
        return []
    settlements = list(order.settlements.select_related("merchant").order_by("merchant_id"))
    if not any(s.status == Settlement.Status.SETTLED for s in settlements):
        return []
    return [
        {
            "merchant_id": part.settlement.merchant_id,
            "account": getattr(part.settlement.merchant, f"{part.settlement.provider}_settlement_account", "") or "",
            "amount_fen": part.from_payout,
            "out_request_no": part.settlement.out_request_no,
            "out_return_no": f"{refund.out_refund_no}M{part.settlement.merchant_id}",
        }
        for part in _plan_reversal(refund=refund, order=order, settlements=settlements)
        if part.from_payout > 0 and part.settlement.status == Settlement.Status.SETTLED
    ]


def _reverses_the_split(refund: Refund, order: Order) -> bool:
    """A refund of the payment that paid the order takes money back from the split; a duplicate
    payment's refund (or another payment's) never does."""
    keeper = paying_payment(order)
    return keeper is not None and keeper.pk == refund.payment_id and refund.reason != Refund.Reason.DUPLICATE_PAYMENT


@dataclass
class _Reversal:
    """One settlement's part of a refund: cumulative targets, and where this refund's merchant part
    comes from — money not paid out yet first, then money paid out (returned at the gateway)."""

    settlement: Settlement
    fee_target: int
    merchant_target: int
    from_pending: int
    from_payout: int


def _plan_reversal(*, refund: Refund, order: Order, settlements: list[Settlement]) -> list[_Reversal]:
    """The proportional rule (:func:`reversal_targets`) applied to ``settlements`` (merchant order)
    for ``refund``: used by the ledger posting and, before the refund, by the gateway returns."""
    total = sum(s.paid_fen for s in settlements)
    before = sum(s.reversed_fee_fen + s.reversed_merchant_fen for s in settlements)
    targets = reversal_targets(
        [(s.paid_fen, s.platform_net_fen, s.merchant_fen) for s in settlements], total_fen=total,
        refunded_fen=min(total, before + refund.amount_fen),
    )  # fmt: skip
    plan = []
    for settlement, (fee_target, merchant_target) in zip(settlements, targets, strict=True):
        delta = merchant_target - settlement.reversed_merchant_fen
        from_pending = delta
        if delta > 0:
            pending = ledger.balance(ledger.merchant_pending(settlement.merchant_id), order=order)
            from_pending = min(delta, max(pending, 0))
        plan.append(_Reversal(settlement, fee_target, merchant_target, from_pending, delta - from_pending))
    return plan


# -- paying out ------------------------------------------------------------------------------------


def _due() -> Q:
    now = timezone.now()
    waiting = Q(status__in=[Settlement.Status.FROZEN, Settlement.Status.PENDING], due_at__lte=now) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    stuck = Q(status=Settlement.Status.SETTLING, next_attempt_at__lte=now)
    return waiting | stuck


def release_frozen() -> int:
    """Frozen settlements whose hold has passed become pending (display only; beat)."""
    return Settlement.objects.filter(status=Settlement.Status.FROZEN, due_at__lte=timezone.now()).update(
        status=Settlement.Status.PENDING
    )


def _claim(settlement_id: int) -> Settlement | None:
    with transaction.atomic():
        _order, settlement = locks.lock_order_and_settlement(settlement_id)
        if not Settlement.objects.filter(_due(), pk=settlement_id).exists():
            return None  # someone else claimed or finished it
        if settlement.status != Settlement.Status.SETTLING and settlement.remaining_merchant_fen <= 0:
            Settlement.objects.filter(pk=settlement.pk).update(status=Settlement.Status.REVERSED)
            return None
        if settlement.status != Settlement.Status.SETTLING:
            # The amount is fixed at the first claim: a re-send uses the same number and amount.
            settlement.split_fen = settlement.split_fen or settlement.remaining_merchant_fen
        settlement.status = Settlement.Status.SETTLING
        settlement.attempts += 1
        settlement.next_attempt_at = timezone.now() + CLAIM_TIMEOUT
        settlement.save(update_fields=["status", "attempts", "next_attempt_at", "split_fen"])
        return settlement


def receivers(settlement: Settlement) -> list[dict]:
    """Who gets what: the merchant's account at the provider that took the payment
    (``Merchant.alipay_settlement_account`` / ``wechat_settlement_account``, with its legal name).
    An empty account makes the provider refuse: retried, then operators are alerted."""
    merchant = settlement.merchant
    return [
        {
            "merchant_id": settlement.merchant_id,
            "account": getattr(merchant, f"{settlement.provider}_settlement_account", "") or "",
            "name": merchant.settlement_name,
            "amount_fen": settlement.split_fen,
            "description": settlement.order.number,
        }
    ]


class SettleOutcome(StrEnum):
    SKIPPED = "skipped"  # not due any more (another worker claimed or finished it)
    SETTLED = "settled"
    REPEATED = "repeated"  # already recorded as paid out
    RETRY = "retry"  # refused or unreachable: tried again later, with back-off
    FAILED = "failed"  # refused too often: operators are alerted


def settle(*, settlement_id: int) -> SettleOutcome:
    """Pay out one due settlement; safe to call concurrently (one claim wins)."""
    settlement = _claim(settlement_id)
    if settlement is None:
        return SettleOutcome.SKIPPED
    settlement = Settlement.objects.select_related("payment", "order", "merchant").get(pk=settlement.pk)
    try:
        answer = providers.get(settlement.provider).split(
            payment=settlement.payment, out_request_no=settlement.out_request_no, receivers=receivers(settlement)
        )  # no transaction open here
    except providers.ProviderError as exc:
        return _record_failure(settlement, str(exc))
    state = (
        providers.SplitState.PROCESSING
        if (answer or {}).get("state") == "PROCESSING"
        else providers.SplitState.FINISHED
    )
    return record_settled(settlement_id=settlement.pk, gateway_state=state)


def record_settled(*, settlement_id: int, gateway_state: str = "") -> SettleOutcome:
    """The gateway accepted the split: the merchant's share moves from pending to settled in the
    ledger and the settlement is ``settled`` — with what the gateway said of it (``gateway_state``)
    in the same transaction, so a split still ``processing`` is always found by reconcile_splits."""
    with transaction.atomic():
        order, settlement = locks.lock_order_and_settlement(settlement_id)
        if gateway_state:
            Settlement.objects.filter(pk=settlement.pk, gateway_state="").update(gateway_state=gateway_state)
        if settlement.status == Settlement.Status.SETTLED:
            return SettleOutcome.REPEATED
        pending_account = ledger.merchant_pending(settlement.merchant_id)
        moved = min(settlement.split_fen, max(ledger.balance(pending_account, order=order), 0))
        ledger.post(
            order_id=order.pk, kind="payout", reference=settlement.out_request_no,
            lines=[
                ledger.Line(pending_account, -moved, settlement.merchant_id),
                ledger.Line(ledger.merchant_settled(settlement.merchant_id), moved, settlement.merchant_id),
            ],
        )  # fmt: skip
        if moved < settlement.split_fen:
            logger.error(
                "settlement %s paid out %d fen but a refund took %d back meanwhile: reverse at the gateway",
                settlement.out_request_no, settlement.split_fen, settlement.split_fen - moved,
            )  # fmt: skip
        Settlement.objects.filter(pk=settlement.pk).update(
            status=Settlement.Status.SETTLED, settled_at=timezone.now(), next_attempt_at=None, failure=""
        )
    return SettleOutcome.SETTLED


def _record_failure(settlement: Settlement, failure: str) -> SettleOutcome:
    if settlement.attempts >= MAX_ATTEMPTS:
        Settlement.objects.filter(pk=settlement.pk, status=Settlement.Status.SETTLING).update(
            status=Settlement.Status.FAILED, failure=failure, next_attempt_at=None
        )
        _alert_operators(settlement, failure)
        return SettleOutcome.FAILED
    delay = timedelta(minutes=min(2**settlement.attempts, 360))
    Settlement.objects.filter(pk=settlement.pk, status=Settlement.Status.SETTLING).update(
        status=Settlement.Status.PENDING, failure=failure, next_attempt_at=timezone.now() + delay
    )
    return SettleOutcome.RETRY


def _alert_operators(settlement: Settlement, failure: str) -> None:
    recipients = list(settings.OPERATOR_EMAILS)
    logger.error("settlement %s failed after %d attempts: %s", settlement.out_request_no, settlement.attempts, failure)
    if recipients:
        send_mail(
            f"[{settings.SHOP_NAME}] settlement {settlement.out_request_no} failed",
            f"Order {settlement.order.number}, merchant {settlement.merchant_id}, "
            f"{settlement.split_fen} fen through {settlement.provider}, {settlement.attempts} attempts.\n\n{failure}\n",
            None,
            recipients,
        )


def reconcile_splits(*, limit: int = 200) -> dict:
    """Beat: ask the gateway about splits it accepted but had not finished ("processing").

    ``finished``: nothing more to do. ``closed`` (the gateway gave up: the receiver was removed or
    refused the money): the merchant has not been paid although the ledger says so, so operators
    are alerted to pay or re-split by hand. Unknown answers are asked again next time.
    """
    counts = {"finished": 0, "closed": 0, "open": 0, "errors": 0}
    processing = Settlement.objects.filter(gateway_state=providers.SplitState.PROCESSING)
    for settlement in processing.select_related("payment", "order")[:limit]:
        provider = providers.get(settlement.provider)
        try:
            state = provider.split_state(payment=settlement.payment, out_request_no=settlement.out_request_no)
        except providers.ProviderError as exc:
            logger.warning("split %s could not be queried: %s", settlement.out_request_no, exc)
            counts["errors"] += 1
            continue
        if state not in (providers.SplitState.FINISHED, providers.SplitState.CLOSED):
            counts["open"] += 1
            continue
        if Settlement.objects.filter(pk=settlement.pk, gateway_state=providers.SplitState.PROCESSING).update(
            gateway_state=state
        ):
            counts[state] += 1
            if state == providers.SplitState.CLOSED:
                _alert_operators(settlement, "the gateway closed the split: the merchant was not paid")
    return counts


def execute_due_settlements(*, limit: int = 200) -> dict:
    """Beat: release holds, then pay out what is due (and re-send claims that got no answer)."""
    release_frozen()
    outcomes: dict[str, int] = {}
    for settlement_id in list(
        Settlement.objects.filter(_due()).order_by("due_at").values_list("pk", flat=True)[:limit]
    ):
        outcome = settle(settlement_id=settlement_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
