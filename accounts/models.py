"""People: shoppers, merchant staff and operators (all one User model), and merchants.

Operators are ``is_staff`` users with the permissions of the "operators" group; merchant staff
are ``is_staff`` users linked to a :class:`Merchant` and see only that merchant's goods in admin.
Member levels, wallet, points and favourites come with later issues.
"""

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


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
