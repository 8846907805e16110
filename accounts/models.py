"""People: shoppers, merchant staff and operators (all one User model), and merchants.

Operators are ``is_staff`` users with the permissions of the "operators" group; merchant staff
are ``is_staff`` users linked to a :class:`Merchant` and see only that merchant's goods in admin.
Member levels, wallet, points and favourites come with later issues.
"""

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

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
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    welcome_sent_at = models.DateTimeField(_("welcome e-mail sent"), null=True, blank=True, editable=False)
    # The spending leaderboard (orders/leaderboard.py) lists the user, masked, unless they hide.
    show_on_leaderboard = models.BooleanField(_("shown on the spending leaderboard"), default=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

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
