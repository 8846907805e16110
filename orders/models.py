"""Orders: what a buyer bought, what they were charged, what was handed over, and every step.

Order ─┬─ OrderItem (one SKU, a price snapshot, buyer inputs) ── OrderItemCode (a card code held
       │                                                         or delivered for this item)
       ├─ OrderEvent (every state transition: who, when, why)
       ├─ Fulfilment (exists once the order was delivered: delivery happens at most once)
       └─ AfterSalesRequest

States follow DESIGN.md's table: :data:`TRANSITIONS` holds every allowed move, and
``orders.services.transition`` — the one conditional UPDATE that changes a status — refuses any other.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Merchant
from catalog.models import CardCode, Sku


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", _("awaiting payment")
        PAID = "paid", _("paid")
        PROCESSING = "processing", _("processing")
        DELIVERED = "delivered", _("delivered")
        EXPIRED = "expired", _("expired")
        CANCELLED = "cancelled", _("cancelled")
        REFUNDING = "refunding", _("refunding")
        REFUNDED = "refunded", _("refunded")

    class Kind(models.TextChoices):
        GOODS = "goods", _("goods")
        TOP_UP = "top_up", _("wallet top-up")
        # An annual membership (orders/membership.py): no items, paying it starts or extends the
        # buyer's Membership. "member", not "membership": the column holds 8 characters.
        MEMBERSHIP = "member", _("annual membership")

    class RefundingReason(models.TextChoices):
        """Why an order is (or was last) ``refunding``: the stranded-refund sweep looks for
        ``out_of_stock`` orders whose refund never started."""

        OUT_OF_STOCK = "out_of_stock", _("could not deliver")
        AFTER_SALES = "after_sales", _("after-sales")
        OPERATOR = "operator", _("operator")

    number = models.CharField(_("order number"), max_length=24, unique=True)
    # A top-up order has no items: paying it credits the buyer's wallet (accounts/wallet.py).
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.GOODS)
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    email = models.EmailField(_("e-mail"))
    phone = models.CharField(_("phone"), max_length=20, blank=True)  # E.164 (checkout, migration 0005)
    # Guest access: "h$<hmac>" for a generated secret, a Django password hash for a chosen one.
    query_secret_hash = models.CharField(max_length=200, blank=True, editable=False)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING_PAYMENT)
    subtotal_fen = models.BigIntegerField(_("subtotal (fen)"))
    discount_fen = models.BigIntegerField(_("discount (fen)"), default=0)
    total_fen = models.BigIntegerField(_("total (fen)"))
    pricing = models.JSONField(_("price breakdown"), default=dict, blank=True)
    refunded_fen = models.BigIntegerField(_("refunded (fen)"), default=0)
    reserved_until = models.DateTimeField(_("pay before"))
    idempotency_key = models.CharField(max_length=64, unique=True, editable=False)
    client_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    language = models.CharField(max_length=8, default="zh-hans", editable=False)
    created_at = models.DateTimeField(_("placed"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    codes_first_viewed_at = models.DateTimeField(_("codes first viewed"), null=True, blank=True)
    delivery_email_sent_at = models.DateTimeField(_("delivery e-mail sent"), null=True, blank=True)
    # The buyer asked for a delivery SMS at checkout (orders/sms.py); claimed once when it is sent.
    sms_opt_in = models.BooleanField(_("delivery by SMS"), default=False)
    delivery_sms_sent_at = models.DateTimeField(_("delivery SMS sent"), null=True, blank=True, editable=False)
    # Set by every transition (orders.services.transition); sweeps ask "in this state since when".
    status_changed_at = models.DateTimeField(_("status changed"), null=True, blank=True, editable=False)
    refunding_reason = models.CharField(
        _("refund cause"), max_length=16, choices=RefundingReason.choices, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "reserved_until"], name="order_status_deadline"),
            models.Index(fields=["email", "status"], name="order_email_status"),
            models.Index(fields=["client_ip", "status"], name="order_ip_status"),
            # Claiming guest orders by a verified phone number (services.claim_guest_orders_by_phone).
            models.Index(fields=["phone"], name="order_guest_phone", condition=Q(buyer__isnull=True) & ~Q(phone="")),
            # The spending leaderboard's week and month (orders/leaderboard.py) read only their period.
            models.Index(fields=["paid_at"], name="order_paid_at", condition=Q(paid_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total_fen__gte=0), name="order_total_not_negative"),
            models.CheckConstraint(
                condition=~Q(kind="top_up") | (Q(buyer__isnull=False) & Q(total_fen__gt=0)),
                name="order_top_up_has_buyer_and_amount",
            ),
            models.CheckConstraint(
                condition=~Q(kind="member") | (Q(buyer__isnull=False) & Q(total_fen__gt=0)),
                name="order_membership_has_buyer_and_amount",
            ),
            models.CheckConstraint(
                condition=Q(total_fen=models.F("subtotal_fen") - models.F("discount_fen")), name="order_total_adds_up"
            ),
            models.CheckConstraint(
                condition=Q(refunded_fen__gte=0) & Q(refunded_fen__lte=models.F("total_fen")),
                name="order_refund_within_total",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("orders:detail", kwargs={"number": self.number})


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="order_items")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="order_items")
    product_title = models.CharField(_("product"), max_length=120)
    sku_label = models.CharField(_("denomination"), max_length=40)
    # The English texts as they were when ordered (the ``tr`` filter shows them on the English site).
    product_title_en = models.CharField(_("product (English)"), max_length=120, blank=True)
    sku_label_en = models.CharField(_("denomination (English)"), max_length=40, blank=True)
    delivery_mode = models.CharField(_("delivery mode"), max_length=16)
    reusable_code = models.BooleanField(default=False)
    unit_price_fen = models.BigIntegerField(_("unit price (fen)"))
    quantity = models.PositiveIntegerField(_("quantity"))
    discount_fen = models.BigIntegerField(_("discount (fen)"), default=0)
    # The part of the discount the platform pays (orders/pricing.py funded_by="platform"): the
    # merchant is credited as if the buyer had paid it (payments/settlement.py).
    platform_funded_fen = models.BigIntegerField(_("platform-funded discount (fen)"), default=0)
    total_fen = models.BigIntegerField(_("amount (fen)"))
    buyer_inputs = models.JSONField(_("buyer inputs"), default=dict, blank=True)
    # Manual delivery: what the merchant reports back (e.g. "top-up done, 5000 points").
    manual_result = models.TextField(_("delivery result"), blank=True)

    class Meta:
        verbose_name = _("order item")
        verbose_name_plural = _("order items")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_item_quantity_positive"),
            models.CheckConstraint(
                condition=Q(total_fen=models.F("unit_price_fen") * models.F("quantity") - models.F("discount_fen")),
                name="order_item_total_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(platform_funded_fen__gte=0) & Q(platform_funded_fen__lte=models.F("discount_fen")),
                name="order_item_platform_funded_within_discount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_title} · {self.sku_label} × {self.quantity}"


class OrderItemCode(models.Model):
    """A card code held (reserved) for, or delivered to, one order item.

    The partial unique constraint is the database's guarantee that a single-use code is held or
    delivered by at most one order item at any time — it is never sold twice, whatever the code
    path. Taking over an expired reservation first marks the old holder's row ``released``.
    """

    class Status(models.TextChoices):
        RESERVED = "reserved", _("reserved")
        DELIVERED = "delivered", _("delivered")
        RELEASED = "released", _("released")

    item = models.ForeignKey(OrderItem, on_delete=models.CASCADE, related_name="codes")
    code = models.ForeignKey(CardCode, on_delete=models.PROTECT, related_name="order_links")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RESERVED)
    reusable = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                condition=Q(status__in=["reserved", "delivered"], reusable=False),
                name="single_use_code_held_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.item_id}:{self.code_id} {self.status}"


Status = Order.Status

# The order lifecycle as data: from each status, the statuses an order may move to. A late payment
# revives an expired or cancelled order; a partial refund (or a refused after-sales refund) returns a
# refunding order to delivered.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING_PAYMENT: frozenset({Status.PAID, Status.EXPIRED, Status.CANCELLED}),
    Status.EXPIRED: frozenset({Status.PAID}),
    Status.CANCELLED: frozenset({Status.PAID}),
    Status.PAID: frozenset({Status.DELIVERED, Status.PROCESSING, Status.REFUNDING, Status.REFUNDED}),
    Status.PROCESSING: frozenset({Status.DELIVERED, Status.REFUNDING, Status.REFUNDED}),
    Status.DELIVERED: frozenset({Status.REFUNDING, Status.REFUNDED}),
    Status.REFUNDING: frozenset({Status.DELIVERED, Status.REFUNDED}),
    Status.REFUNDED: frozenset(),
}


class OrderEvent(models.Model):
    class Kind(models.TextChoices):
        """What happened to an order. Transitions and plain records alike; the admin shows the label."""

        PLACED = "placed", pgettext_lazy("order event", "placed")
        PAID = "paid", _("paid")
        PAID_LATE = "paid_late", _("paid after the deadline")
        CANCELLED = "cancelled", _("cancelled by the buyer")
        EXPIRED = "expired", _("expired unpaid")
        PAYMENT_AMOUNT_MISMATCH = "payment_amount_mismatch", _("payment of a wrong amount")
        PAYMENT_AFTER_PAID = "payment_after_paid", _("payment after it was paid")
        DUPLICATE_PAYMENT = "duplicate_payment", _("duplicate payment")
        DUPLICATE_PAYMENT_REFUNDED = "duplicate_payment_refunded", _("duplicate payment refunded")
        DELIVERED = "delivered", _("delivered")
        AWAITING_MERCHANT = "awaiting_merchant", _("waiting for the merchant")
        WALLET_CREDITED = "wallet_credited", _("wallet credited")
        MEMBERSHIP_GRANTED = "membership_granted", _("membership started or extended")
        MEMBERSHIP_SHORTENED = "membership_shortened", _("membership shortened by a refund")
        CODES_REALLOCATED = "codes_reallocated", _("codes taken anew")
        CODES_VIEWED = "codes_viewed", pgettext_lazy("order event", "codes first viewed")
        DELIVERY_FAILED = "delivery_failed", _("could not deliver")
        DELIVERY_EMAIL_RESENT = "delivery_email_resent", _("delivery e-mail sent again")
        REFUND_REQUESTED = "refund_requested", _("refund requested")
        REFUND_FAILED = "refund_failed", _("refund failed")
        REFUND_FAILED_REVERTED = "refund_failed_reverted", _("refund failed, delivered again")
        REFUNDED = "refunded", _("money refunded")
        PARTIALLY_REFUNDED = "partially_refunded", _("partly refunded")
        CLOSED_REFUNDED = "closed_refunded", _("closed, all refunded")
        OPERATOR_REFUND = "operator_refund", _("refund by an operator")
        AFTER_SALES_OPENED = "after_sales_opened", _("after-sales request opened")
        AFTER_SALES_CODES_REPLACED = "after_sales_codes_replaced", _("codes replaced (after-sales)")
        AFTER_SALES_REFUND = "after_sales_refund", _("refund (after-sales)")
        AFTER_SALES_REJECTED = "after_sales_rejected", _("after-sales request rejected")
        AFTER_SALES_OPENED_EMAIL = "after_sales_opened_email", _("after-sales e-mail to merchants")
        AFTER_SALES_DECIDED_EMAIL = "after_sales_decided_email", _("after-sales e-mail to the buyer")
        CLAIMED = "claimed", _("claimed into the account of a verified e-mail")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    kind = models.CharField(_("event"), max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.kind} {self.from_status}→{self.to_status}"


class Fulfilment(models.Model):
    """The one delivery of an order. Its uniqueness is the last line against delivering twice."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="fulfilment")
    delivered_codes = models.PositiveIntegerField(default=0)
    reallocated_codes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"fulfilment of {self.order_id}"


class AfterSalesRequest(models.Model):
    class Reason(models.TextChoices):
        INVALID_CODE = "invalid_code", _("the code does not work")
        WRONG_DENOMINATION = "wrong_denomination", _("wrong denomination")
        OTHER = "other", _("other")

    class Status(models.TextChoices):
        OPEN = "open", _("waiting for the merchant")
        REPLACED = "replaced", _("codes replaced")
        REFUNDED = "refunded", _("refunded")
        REJECTED = "rejected", _("rejected")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="after_sales")
    reason = models.CharField(_("reason"), max_length=24, choices=Reason.choices)
    message = models.TextField(_("message"), max_length=2000)
    evidence = models.ImageField(_("evidence"), upload_to="after-sales/%Y/%m/", blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    refund_fen = models.BigIntegerField(_("refund (fen)"), default=0)
    decision_note = models.TextField(_("answer"), blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("opened"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)

    class Meta:
        verbose_name = _("after-sales request")
        verbose_name_plural = _("after-sales requests")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["order"], condition=Q(status="open"), name="one_open_after_sales_per_order")
        ]

    def __str__(self) -> str:
        return f"{self.order} · {self.get_reason_display()}"


class MembershipPlan(models.Model):
    """An annual-membership offer, defined by operators in admin (orders/membership.py)."""

    name = models.CharField(_("name"), max_length=60)
    name_en = models.CharField(_("name (English)"), max_length=60, blank=True)
    price_fen = models.BigIntegerField(_("price (fen)"))
    duration_days = models.PositiveIntegerField(_("duration (days)"), default=365)
    discount_percent = models.PositiveSmallIntegerField(
        _("member discount (%)"),
        help_text=_("Taken off the list price of every denomination while the membership runs."),
    )
    is_active = models.BooleanField(_("on sale"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("membership plan")
        verbose_name_plural = _("membership plans")
        ordering = ["position", "price_fen", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price_fen__gt=0), name="membership_plan_price_positive"),
            models.CheckConstraint(condition=Q(duration_days__gte=1), name="membership_plan_duration_positive"),
            models.CheckConstraint(condition=Q(discount_percent__lte=90), name="membership_plan_discount_at_most_90"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A buyer's annual membership: one row per buyer, active while ``ends_at`` is in the future.

    ``ends_at`` moves only through orders/membership.py: a paid membership order extends it (from
    now, or from the current end when it has not expired yet), a refund shortens it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    plan = models.ForeignKey(MembershipPlan, on_delete=models.PROTECT, related_name="+", verbose_name=_("plan"))
    # The plan's discount when it was last bought: later changes of the plan do not change it.
    discount_percent = models.PositiveSmallIntegerField(_("member discount (%)"))
    started_at = models.DateTimeField(_("member since"))
    ends_at = models.DateTimeField(_("expires"), db_index=True)
    # The ``ends_at`` a renewal reminder was sent for: one reminder per membership period.
    reminded_for = models.DateTimeField(_("reminder sent for"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")

    def __str__(self) -> str:
        return f"{self.user} · {self.ends_at:%Y-%m-%d}"


class MembershipGrant(models.Model):
    """The time one paid membership order gave (reference = the order: granted once), and what
    refunds of it took back."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="membership_grant")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="grants")
    plan = models.ForeignKey(MembershipPlan, on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    revoked_seconds = models.BigIntegerField(_("taken back by refunds (seconds)"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("membership period")
        verbose_name_plural = _("membership periods")
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"{self.order} · {self.starts_at:%Y-%m-%d}–{self.ends_at:%Y-%m-%d}"
