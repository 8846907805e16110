"""The home page's content (catalog/home.py has the logic, docs/ARCHITECTURE.md "Home page"):

* ``HomeSlide`` — one picture of the carousel at the top (re-encoded at two sizes on upload), a link,
  a title in both languages, an optional time window, an order and a switch.
* ``HomeSection`` — one block of products below it, ordered by ``sort_order``: chosen SKUs, a
  category's top products, the best sellers or the newest products, with a title and a limit.
* ``ProductSalesRollup`` — sales per product over the last 30 days, written by the beat task
  ``catalog.tasks.roll_up_sales`` so that no page aggregates sales.
"""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


def validate_link(value: str) -> None:
    """A slide links to a page of the shop (``/c/game-cards/``) or to an http(s) address."""
    if value and not (
        (value.startswith("/") and not value.startswith("//")) or value.startswith(("https://", "http://"))
    ):
        raise ValidationError(
            _("Enter an address of this shop starting with / (for example /c/game-cards/) or an http(s) address."),
            code="link",
        )


class HomeSlide(models.Model):
    title = models.CharField(_("title"), max_length=80)
    title_en = models.CharField(_("English title"), max_length=80, blank=True)
    image = models.ImageField(_("picture"), upload_to="home/slides/%Y/%m/", blank=True)
    image_small = models.ImageField(upload_to="home/slides/%Y/%m/", blank=True, editable=False)
    link_url = models.CharField(
        _("link"), max_length=300, blank=True, validators=[validate_link], help_text=_("For example /c/game-cards/.")
    )
    starts_at = models.DateTimeField(_("shown from"), null=True, blank=True, help_text=_("Empty: at once."))
    ends_at = models.DateTimeField(_("shown until"), null=True, blank=True, help_text=_("Empty: with no end."))
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    enabled = models.BooleanField(_("shown"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("home carousel slide")
        verbose_name_plural = _("home carousel slides")
        ordering = ["sort_order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True) | Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="home_slide_window_ordered",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("The end must come after the start.")})

    def is_shown_at(self, now) -> bool:
        return (
            self.enabled
            and bool(self.image)
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )


class HomeSection(models.Model):
    class Kind(models.TextChoices):
        FEATURED = "featured", _("featured SKUs")
        CATEGORY = "category", _("category block")
        BEST_SELLERS = "best_sellers", _("best sellers")
        NEW_ARRIVALS = "new_arrivals", _("new arrivals")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=60)
    title_en = models.CharField(_("English title"), max_length=60, blank=True)
    category = models.ForeignKey(
        "catalog.Category",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="home_sections",
        verbose_name=_("category"),
        help_text=_("For a category block: its products and those of its subcategories, best sellers first."),
    )
    skus = models.ManyToManyField(
        "catalog.Sku",
        blank=True,
        related_name="home_sections",
        verbose_name=_("SKUs"),
        help_text=_("For featured SKUs: their products. Empty: the products marked featured."),
    )
    limit = models.PositiveSmallIntegerField(
        _("number of products"), default=8, validators=[MinValueValidator(1), MaxValueValidator(48)]
    )
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    enabled = models.BooleanField(_("shown"), default=True)

    class Meta:
        verbose_name = _("home section")
        verbose_name_plural = _("home sections")
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        if self.kind == self.Kind.CATEGORY and self.category_id is None:
            raise ValidationError({"category": _("Choose the category this block shows.")})


class ProductSalesRollup(models.Model):
    product = models.OneToOneField(
        "catalog.Product", on_delete=models.CASCADE, primary_key=True, related_name="sales_rollup"
    )
    sold_30d = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("sales of the last 30 days")
        verbose_name_plural = _("sales of the last 30 days")
        indexes = [models.Index(fields=["-sold_30d"], name="sales_rollup_best")]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.sold_30d}"
