"""Payments: attempts to pay an order, refunds, and what the gateways told us.

One Order may have several Payment attempts (Alipay first, then WeChat…), each with its own
``out_trade_no``. A Refund returns money of one payment. Every notification a gateway posts is
kept raw as a Notification, verified or not, with what was done about it. The money ledger and
split settlement are below; the buyer's wallet is accounts.WalletEntry (accounts/wallet.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from kameng.appendonly import AppendOnlyModel
from orders.models import Order
from orders.payment_port import RefundReason, RefundRoute


class Payment(models.Model):
    class Status(models.TextChoices):
        CREATED = "created", _("waiting for the buyer")
        PAID = "paid", _("paid")
        CLOSED = "closed", _("closed")
        FAILED = "failed", _("failed")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(_("provider"), max_length=16)
    out_trade_no = models.CharField(_("our trade number"), max_length=40, unique=True)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.CREATED)
    gateway_trade_no = models.CharField(_("gateway trade number"), max_length=64, blank=True)
    refunded_fen = models.BigIntegerField(_("refunded (fen)"), default=0)
    created_at = models.DateTimeField(_("started"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    # Lost notifications (掉单): the gateway is asked about an open attempt with back-off.
    query_attempts = models.PositiveIntegerField(_("gateway queries"), default=0)
    next_query_at = models.DateTimeField(_("next gateway query"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="payment_status_created")]
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_fen__gte=0) & Q(refunded_fen__lte=models.F("amount_fen")),
                name="payment_refund_within_amount",
            ),
            models.UniqueConstraint(
                fields=["provider", "gateway_trade_no"],
                condition=~Q(gateway_trade_no=""),
                name="payment_gateway_trade_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.out_trade_no


class Refund(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", _("requested")
        PROCESSING = "processing", _("processing")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    # Orders chooses why and where money goes back (orders/payment_port.py): the same choices.
    Reason = RefundReason

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    out_refund_no = models.CharField(_("refund number"), max_length=40, unique=True)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)

    Route = RefundRoute

    note = models.TextField(_("note"), blank=True)
    # Where the money goes: back the way it came (the gateway), or to the buyer's wallet.
    route = models.CharField(_("refund to"), max_length=10, choices=Route.choices, default=Route.ORIGINAL)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.REQUESTED)
    gateway_refund_no = models.CharField(max_length=64, blank=True)
    failure = models.TextField(_("failure"), blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Reconciliation: a refund the gateway has not finished is asked about with back-off.
    query_attempts = models.PositiveIntegerField(_("gateway queries"), default=0)
    next_query_at = models.DateTimeField(_("next gateway query"), null=True, blank=True)
    # The buyer was told about this refund (duplicate payments); claimed once.
    buyer_notified_at = models.DateTimeField(_("buyer told"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="refund_status_created")]
        constraints = [models.CheckConstraint(condition=Q(amount_fen__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return self.out_refund_no


class Notification(models.Model):
    """One message a gateway posted to us, stored raw before anything is done with it.

    Operators read these to answer "did Alipay tell us?" and to see forged or refused messages.
    ``body`` and ``headers`` are exactly what arrived (headers: the gateway's own ones only);
    ``parsed`` is what verification produced (for WeChat Pay, the decrypted resource).
    """

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("received, not processed yet")
        ACCEPTED = "accepted", _("accepted")
        REPEATED = "repeated", _("repeated (already handled)")
        REFUSED = "refused", _("refused")
        ERROR = "error", _("error while processing")

    class Kind(models.TextChoices):
        UNKNOWN = "", _("unknown")
        PAYMENT = "payment", _("payment")
        REFUND = "refund", _("refund")

    provider = models.CharField(_("provider"), max_length=16)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, blank=True, default=Kind.UNKNOWN)
    body = models.TextField(_("raw body"), blank=True)
    headers = models.TextField(_("raw headers"), blank=True)
    remote_addr = models.GenericIPAddressField(_("sender address"), null=True, blank=True)
    parsed = models.JSONField(_("parsed"), default=dict, blank=True)
    verified = models.BooleanField(_("signature verified"), default=False)
    notify_id = models.CharField(_("gateway notification id"), max_length=64, blank=True)
    out_trade_no = models.CharField(_("our trade number"), max_length=40, blank=True, db_index=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.RECEIVED)
    reason = models.TextField(_("reason"), blank=True)
    payment = models.ForeignKey(Payment, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications")
    refund = models.ForeignKey(Refund, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications")
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    class Meta:
        verbose_name = _("gateway notification")
        verbose_name_plural = _("gateway notifications")
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["outcome", "received_at"], name="notification_outcome_received")]

    def __str__(self) -> str:
        return f"{self.provider} {self.out_trade_no or '?'} {self.outcome}"


# -- the money ledger and split settlement (payments/ledger.py, payments/settlement.py) ----------------


class LedgerEntry(AppendOnlyModel):
    """One append-only line of the money ledger; balances and statements are sums of these.

    Accounts (see payments/ledger.py): ``buyer_paid`` (money in), ``refund`` (money out),
    ``unallocated`` (paid, not split yet), ``platform_fee``, ``merchant:<id>:pending`` (earned, not
    paid out; frozen while the settlement's hold runs), ``merchant:<id>:settled`` and
    ``commission:<id>`` (referrals, marketing issue). Per order: in − out = the sum of the others.
    PostgreSQL refuses UPDATE and DELETE on the table (migration 0003).
    """

    account = models.CharField(_("account"), max_length=64)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entries")
    merchant = models.ForeignKey(
        "accounts.Merchant", on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entries"
    )
    kind = models.CharField(_("kind"), max_length=20)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    reference = models.CharField(_("reference"), max_length=64)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "created_at"], name="ledger_account_created"),
            models.Index(fields=["merchant", "created_at"], name="ledger_merchant_created"),
        ]
        constraints = [
            # One posting per (account, kind, reference): posting the same event twice is refused.
            models.UniqueConstraint(fields=["account", "kind", "reference"], name="ledger_posting_once"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.kind} {self.amount_fen}"


class Settlement(models.Model):
    """The split of one delivered order's money for one merchant, paid out through the provider
    that took the payment (payments/settlement.py)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("due, waiting to be paid out")
        FROZEN = "frozen", _("frozen (hold period)")
        SETTLING = "settling", _("being paid out")
        SETTLED = "settled", _("paid out")
        FAILED = "failed", _("failed (operators must act)")
        REVERSED = "reversed", _("reversed (refunded before payout)")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="settlements")
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="settlements")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="settlements")
    gross_fen = models.BigIntegerField(_("gross (fen)"))
    fee_fen = models.BigIntegerField(_("platform fee (fen)"))
    merchant_fen = models.BigIntegerField(_("merchant amount (fen)"))
    # Discounts on the merchant's lines the platform pays out of its fee (orders/pricing.py): in
    # ``gross_fen`` but not paid by the buyer. The platform keeps ``fee_fen - platform_funded_fen``.
    platform_funded_fen = models.BigIntegerField(_("platform-funded discount (fen)"), default=0)
    # Of the platform's share (fee − platform-funded), what refunds took back.
    reversed_fee_fen = models.BigIntegerField(_("fee reversed (fen)"), default=0)
    reversed_merchant_fen = models.BigIntegerField(_("merchant amount reversed (fen)"), default=0)
    split_fen = models.BigIntegerField(_("paid out (fen)"), default=0)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.FROZEN)
    due_at = models.DateTimeField(_("due"))
    out_request_no = models.CharField(_("split request number"), max_length=40, unique=True)
    provider = models.CharField(_("provider"), max_length=16)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    failure = models.TextField(_("failure"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    settled_at = models.DateTimeField(_("settled"), null=True, blank=True)
    # What the gateway says of an accepted split: "processing" until it is final (WeChat answers
    # PROCESSING; payments/settlement.py reconcile_splits asks again), then "finished" or "closed".
    gateway_state = models.CharField(_("gateway state"), max_length=12, blank=True)

    class Meta:
        verbose_name = _("settlement")
        verbose_name_plural = _("settlements")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "due_at"], name="settlement_status_due")]
        constraints = [
            models.UniqueConstraint(fields=["order", "merchant"], name="settlement_once_per_order_merchant"),
            models.CheckConstraint(
                condition=Q(fee_fen__gte=0) & Q(merchant_fen__gte=0) & Q(gross_fen=F("fee_fen") + F("merchant_fen")),
                name="settlement_parts_add_up",
            ),
            models.CheckConstraint(
                condition=Q(platform_funded_fen__gte=0) & Q(platform_funded_fen__lte=F("fee_fen")),
                name="settlement_platform_funds_within_its_fee",
            ),
            models.CheckConstraint(
                condition=Q(reversed_fee_fen__gte=0)
                & Q(reversed_fee_fen__lte=F("fee_fen") - F("platform_funded_fen"))
                & Q(reversed_merchant_fen__gte=0)
                & Q(reversed_merchant_fen__lte=F("merchant_fen")),
                name="settlement_reversal_within_amounts",
            ),
        ]

    def __str__(self) -> str:
        return self.out_request_no

    @property
    def remaining_merchant_fen(self) -> int:
        return self.merchant_fen - self.reversed_merchant_fen

    @property
    def paid_fen(self) -> int:
        """What buyers paid for this merchant's lines (gross less the platform-funded discounts)."""
        return self.gross_fen - self.platform_funded_fen

    @property
    def platform_net_fen(self) -> int:
        """What the platform keeps of the money paid: its fee less the discounts it funded."""
        return self.fee_fen - self.platform_funded_fen
