"""People: shoppers, merchant staff and operators (all one User model), and merchants.

Operators are ``is_staff`` users with the permissions of the "operators" group; merchant staff
are ``is_staff`` users linked to a :class:`Merchant` and see only that merchant's goods in admin.
The wallet, points and member levels live here too (the ledgers in ``wallet.py`` and ``points.py``,
levels in ``levels.py``); favourites are catalog's (``catalog.Favourite``), the phone number and
notification choices are fields of :class:`User`.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

from kameng.appendonly import AppendOnlyModel


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person who signs in with an e-mail address."""

    username = None
    email = models.EmailField(_("e-mail address"), unique=True)
    nickname = models.CharField(_("nickname"), max_length=40, blank=True)
    # E.164 (accounts/phones.py), unique when set; only a verified number signs in by SMS code, claims
    # guest orders or receives delivery texts (the adapter's phone methods, accounts/adapter.py).
    phone = PhoneNumberField(_("mobile number"), blank=True)
    phone_verified = models.BooleanField(_("mobile number verified"), default=False)
    # Notification settings (/me/settings/). Delivery e-mail on by default (it carries the codes);
    # everything else is opt-in.
    notify_delivery_email = models.BooleanField(_("delivery by e-mail"), default=True)
    notify_delivery_sms = models.BooleanField(_("delivery by SMS"), default=False)
    notify_promotions_email = models.BooleanField(_("promotions by e-mail"), default=False)
    notify_promotions_sms = models.BooleanField(_("promotions by SMS"), default=False)
    notify_price_drops = models.BooleanField(_("price drops by e-mail"), default=False)
    welcome_sent_at = models.DateTimeField(_("welcome e-mail sent"), null=True, blank=True, editable=False)
    # The spending leaderboard (orders/leaderboard.py) lists the user, masked, unless they hide.
    show_on_leaderboard = models.BooleanField(_("shown on the spending leaderboard"), default=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(fields=["phone"], condition=~Q(phone=""), name="user_phone_unique_when_set"),
        ]

    def __str__(self) -> str:
        return self.nickname or self.email

    @property
    def display_name(self) -> str:
        return self.nickname or self.email.split("@")[0]


def default_commission_rate() -> Decimal:
    return settings.PLATFORM_COMMISSION_RATE


class Merchant(models.Model):
    """A seller on the platform. The platform keeps ``commission_rate`` of every sale."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        SUSPENDED = "suspended", _("suspended")

    name = models.CharField(_("display name"), max_length=80)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    users = models.ManyToManyField(User, related_name="merchants", blank=True, verbose_name=_("staff users"))
    contact_name = models.CharField(_("contact person"), max_length=40, blank=True)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=20, blank=True)
    commission_rate = models.DecimalField(
        _("platform commission rate"),
        max_digits=5,
        decimal_places=4,
        default=default_commission_rate,
        help_text=_("Share of each sale the platform keeps, e.g. 0.1000 for 10%."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # Where split settlement pays the merchant's share (payments/settlement.py). Empty: settling a
    # payment of that provider fails clearly and operators are alerted after the retries.
    settlement_name = models.CharField(
        _("legal name for settlement"), max_length=128, blank=True,
        help_text=_("The full registered name (a sole trader: the owner's name), as the gateway has it."),
    )  # fmt: skip
    alipay_settlement_account = models.CharField(
        _("Alipay royalty account"), max_length=16, blank=True,
        validators=[RegexValidator(r"^2088\d{12}$", _("An Alipay user id: 16 digits starting with 2088."))],
        help_text=_("Alipay user id (2088…) bound as a royalty receiver of the platform's app."),
    )  # fmt: skip
    wechat_settlement_account = models.CharField(
        _("WeChat Pay receiver merchant id"), max_length=16, blank=True,
        validators=[RegexValidator(r"^\d{8,12}$", _("A WeChat Pay merchant id: 8 to 12 digits."))],
        help_text=_("The merchant's own WeChat Pay merchant id, added as a profit-sharing receiver."),
    )  # fmt: skip
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        ordering = ["name"]
        permissions = [("operate_platform", "Operate the platform: see and manage every merchant")]
        constraints = [
            models.CheckConstraint(
                condition=Q(commission_rate__gte=0) & Q(commission_rate__lt=1),
                name="merchant_commission_rate_range",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


# -- wallet ----------------------------------------------------------------------------------------------


class Wallet(models.Model):
    """A user's balance account. The balance is the sum of its entries; this row is what every
    movement locks (``SELECT … FOR UPDATE``), so movements of one wallet happen one at a time."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallet")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("wallet")
        verbose_name_plural = _("wallets")

    def __str__(self) -> str:
        return str(self.user)


class WalletEntry(AppendOnlyModel):
    """One append-only movement of a wallet, in fen (signed: + in, − out).

    ``seq`` numbers a wallet's entries 1, 2, 3… and ``balance_after_fen`` is the balance once the
    entry is applied. The database enforces what the service promises even against a buggy caller:
    UNIQUE(wallet, seq) means two movements computed from the same prior balance cannot both
    commit, and CHECK(balance_after_fen ≥ 0) means no balance is ever negative. ``reference`` (the
    payment's ``out_trade_no``, the refund's ``out_refund_no``…) is unique per kind, so a movement
    is recorded once however often it is asked for. The database refuses UPDATE and DELETE.
    """

    class Kind(models.TextChoices):
        TOP_UP = "top_up", _("top-up")
        PAYMENT = "payment", _("payment")
        REFUND = "refund", _("refund")
        COMMISSION = "commission", _("commission")
        WITHDRAWAL = "withdrawal", _("withdrawal")
        ADJUSTMENT = "adjustment", _("adjustment")

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    seq = models.PositiveIntegerField(_("number"))
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    balance_after_fen = models.BigIntegerField(_("balance after (fen)"))
    reference = models.CharField(_("reference"), max_length=64)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="wallet_entries"
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("wallet entry")
        verbose_name_plural = _("wallet entries")
        ordering = ["-seq"]
        constraints = [
            models.UniqueConstraint(fields=["wallet", "seq"], name="wallet_entry_seq_unique"),
            models.UniqueConstraint(fields=["kind", "reference"], name="wallet_entry_once"),
            models.CheckConstraint(condition=Q(balance_after_fen__gte=0), name="wallet_balance_never_negative"),
            models.CheckConstraint(condition=~Q(amount_fen=0), name="wallet_entry_amount_nonzero"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="wallet_entry_seq_from_one"),
        ]

    def __str__(self) -> str:
        return f"{self.wallet} #{self.seq} {self.kind} {self.amount_fen}"


# -- loyalty: points and member levels -------------------------------------------------------------------


class LoyaltySettings(models.Model):
    """The operators' rules for points and member levels: one row (pk 1), edited in admin, read at
    every use — a change takes effect without a deploy. :meth:`load` creates it with the defaults."""

    class Rounding(models.TextChoices):
        FLOOR = "floor", _("round down")
        HALF_UP = "half_up", _("round half up")

    points_enabled = models.BooleanField(_("points enabled"), default=True)
    earn_points_per_yuan = models.DecimalField(
        _("points earned per yuan paid"), max_digits=7, decimal_places=2, default=Decimal("1"),
        help_text=_("Points credited for each yuan a buyer pays for goods (wallet top-ups earn none)."),
    )  # fmt: skip
    earn_rounding = models.CharField(
        _("rounding of earned points"), max_length=8, choices=Rounding.choices, default=Rounding.FLOOR
    )
    redeem_points_per_yuan = models.PositiveIntegerField(
        _("points per yuan of discount"), default=100, help_text=_("How many points make one yuan off at checkout.")
    )
    redeem_max_percent = models.PositiveSmallIntegerField(
        _("points cover at most (%)"), default=20,
        help_text=_("The largest share of an order's total that points may pay for, 0 to 100."),
    )  # fmt: skip
    expire_after_years = models.PositiveSmallIntegerField(
        _("points expire after (years)"), default=1,
        help_text=_("Points earned in year Y expire at the end of year Y + this number; 0: they never expire."),
    )  # fmt: skip
    downgrade_on_refund = models.BooleanField(
        _("downgrade after refunds"), default=False,
        help_text=_("When refunds take a member's paid spend below their level's threshold, move them down."),
    )  # fmt: skip
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        verbose_name = _("points and levels settings")
        verbose_name_plural = _("points and levels settings")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="loyalty_settings_single_row"),
            models.CheckConstraint(condition=Q(earn_points_per_yuan__gte=0), name="loyalty_earn_rate_not_negative"),
            models.CheckConstraint(condition=Q(redeem_points_per_yuan__gte=1), name="loyalty_redeem_rate_positive"),
            models.CheckConstraint(condition=Q(redeem_max_percent__lte=100), name="loyalty_redeem_cap_percent"),
        ]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> LoyaltySettings:
        found, _created = cls.objects.get_or_create(pk=1)
        return found


class MemberLevel(models.Model):
    """A member level operators define: reached when a buyer's paid spend (paid minus refunded, in
    fen) reaches ``threshold_fen``. Its price is ``discount_percent`` off the list price, or an
    explicit price per SKU (``catalog.LevelPrice``), which wins."""

    name = models.CharField(_("name"), max_length=20)
    name_en = models.CharField(_("name (English)"), max_length=20, blank=True)
    colour = models.CharField(
        _("badge colour"), max_length=7, default="#8a6d3b",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("A colour like #c9a227."))],
    )  # fmt: skip
    threshold_fen = models.BigIntegerField(
        _("paid spend to reach it (fen)"), unique=True, help_text=_("Cumulative paid spend, minus refunds, in fen.")
    )
    discount_percent = models.PositiveSmallIntegerField(
        _("discount (%)"), default=0, help_text=_("Percent off the list price, 0 to 90 (5 takes 5 percent off).")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("member level")
        verbose_name_plural = _("member levels")
        ordering = ["threshold_fen"]
        constraints = [
            models.CheckConstraint(condition=Q(threshold_fen__gte=0), name="member_level_threshold_not_negative"),
            models.CheckConstraint(condition=Q(discount_percent__lte=90), name="member_level_discount_at_most_90"),
        ]

    def __str__(self) -> str:
        return self.name


class LoyaltyAccount(models.Model):
    """A buyer's points and level. The row every points movement locks (like :class:`Wallet`), and
    where the level and the paid spend it was computed from are kept (recomputed from the orders
    whenever an order is paid or refunded: ``orders/loyalty.py``)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="loyalty")
    level = models.ForeignKey(
        MemberLevel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("level")
    )
    paid_spend_fen = models.BigIntegerField(_("paid spend (fen)"), default=0)
    level_changed_at = models.DateTimeField(_("level changed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("points and level account")
        verbose_name_plural = _("points and level accounts")

    def __str__(self) -> str:
        return str(self.user)


class PointsEntry(AppendOnlyModel):
    """One append-only movement of a buyer's points (signed: + in, − out), numbered like the
    wallet's: UNIQUE(account, seq), CHECK(balance_after ≥ 0), UNIQUE(kind, reference) so a movement
    asked for twice is made once, and a trigger refusing UPDATE/DELETE (``accounts/points.py``)."""

    class Kind(models.TextChoices):
        EARN = "earn", _("earned")
        SPEND = "spend", _("used at checkout")
        RELEASE = "release", _("returned: order not paid")
        EARN_REVERSAL = "earn_reversal", _("taken back: refund")
        REFUND_RETURN = "refund_return", _("returned: refund")
        EXPIRY = "expiry", _("expired")
        ADJUSTMENT = "adjustment", _("adjustment")

    account = models.ForeignKey(LoyaltyAccount, on_delete=models.PROTECT, related_name="entries")
    seq = models.PositiveIntegerField(_("number"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    points = models.BigIntegerField(_("points"))
    balance_after = models.BigIntegerField(_("balance after"))
    reference = models.CharField(_("reference"), max_length=64)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="points_entries"
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        ordering = ["-seq"]
        constraints = [
            models.UniqueConstraint(fields=["account", "seq"], name="points_entry_seq_unique"),
            models.UniqueConstraint(fields=["kind", "reference"], name="points_entry_once"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="points_balance_never_negative"),
            models.CheckConstraint(condition=~Q(points=0), name="points_entry_nonzero"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="points_entry_seq_from_one"),
        ]

    def __str__(self) -> str:
        return f"{self.account} #{self.seq} {self.kind} {self.points}"
