"""Payments: attempts to pay an order, and refunds.

One Order may have several Payment attempts (Alipay first, then WeChat…), each with its own
``out_trade_no``. A Refund returns money of one payment. The payments issue adds gateway
notifications (stored raw), the wallet ledger and settlement; the sandbox provider works now.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from orders.models import Order


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

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
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

    class Reason(models.TextChoices):
        OUT_OF_STOCK = "out_of_stock", _("could not deliver: out of stock")
        DUPLICATE_PAYMENT = "duplicate_payment", _("paid twice")
        AFTER_SALES = "after_sales", _("after-sales")
        OPERATOR = "operator", _("operator decision")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    out_refund_no = models.CharField(_("refund number"), max_length=40, unique=True)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    note = models.TextField(_("note"), blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.REQUESTED)
    gateway_refund_no = models.CharField(max_length=64, blank=True)
    failure = models.TextField(_("failure"), blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(amount_fen__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return self.out_refund_no
