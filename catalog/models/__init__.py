"""What is for sale and the stock behind it. (A package: a new topic goes in a module of its own,
imported here.)

Category → Product (owned by a Merchant) → Sku (one denomination, priced in fen) → CardCode (one
encrypted code). Codes arrive through an ImportBatch (staged as ImportRow until the merchant
confirms); a StockAlert marks one low-stock episode of a SKU; CodeAccess records every time a
person saw full codes (reveal in admin, full export).

Money is integer fen (分) everywhere.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import MemberLevel, Merchant


class Category(models.Model):
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children", verbose_name=_("parent")
    )
    name = models.CharField(_("name"), max_length=60)
    name_en = models.CharField(_("English name"), max_length=60, blank=True)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    is_active = models.BooleanField(_("shown"), default=True)
    colour = models.CharField(
        _("colour"), max_length=7, blank=True,
        help_text=_("Like #3b82f6: the background of the picture shown for products without an image."),
    )  # fmt: skip
    children_list: list["Category"]  # the shown children, filled by catalog.selectors.active_categories

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name


class ProductQuerySet(models.QuerySet):
    def listed(self):
        return self.filter(status=Product.Status.LISTED, merchant__status=Merchant.Status.ACTIVE)


class Product(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        LISTED = "listed", _("listed")
        DELISTED = "delisted", _("delisted")

    class DeliveryMode(models.TextChoices):
        AUTOMATIC = "automatic", _("automatic card codes")
        MANUAL = "manual", _("manual service")
        UPSTREAM = "upstream", _("upstream supplier")

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="products", verbose_name=_("merchant")
    )
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products", verbose_name=_("category")
    )
    title = models.CharField(_("title"), max_length=120)
    title_en = models.CharField(_("English title"), max_length=120, blank=True)
    slug = models.SlugField(_("slug"), max_length=120, unique=True)
    summary = models.CharField(_("summary"), max_length=200, blank=True)
    summary_en = models.CharField(_("English summary"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    description_en = models.TextField(_("English description"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    delivery_mode = models.CharField(
        _("delivery mode"), max_length=16, choices=DeliveryMode.choices, default=DeliveryMode.AUTOMATIC
    )
    image = models.ImageField(_("cover image"), upload_to="products/%Y/%m/", blank=True)
    is_featured = models.BooleanField(_("featured"), default=False)
    tags = models.ManyToManyField("catalog.Tag", blank=True, related_name="products", verbose_name=_("tags"))
    show_stock_count = models.BooleanField(
        _("show exact stock"),
        default=False,
        help_text=_("Shoppers see the number of codes left, not only in stock / low."),
    )
    min_per_order = models.PositiveIntegerField(_("minimum per order"), default=1)
    max_per_order = models.PositiveIntegerField(_("maximum per order"), default=10)
    max_per_buyer = models.PositiveIntegerField(
        _("maximum per buyer"),
        null=True,
        blank=True,
        help_text=_("Across all of a buyer's orders; empty for no limit."),
    )
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # Search (catalog/search.py): title, English title, category, SKU labels, synonyms, full pinyin
    # and initials, lower-cased, rebuilt on save; rating (catalog/reviews.py): the shown reviews.
    search_text = models.TextField(_("search text"), blank=True, editable=False)
    rating_avg = models.DecimalField(_("average rating"), max_digits=3, decimal_places=2, default=0, editable=False)
    rating_count = models.PositiveIntegerField(_("ratings"), default=0, editable=False)

    objects = ProductQuerySet.as_manager()

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sort_order", "-id"]
        indexes = [models.Index(fields=["status", "category"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_per_order__gte=1) & Q(max_per_order__gte=models.F("min_per_order")),
                name="product_purchase_limits_consistent",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("catalog:product", kwargs={"slug": self.slug})

    def display_title(self, language: str) -> str:
        return self.title_en if language == "en" and self.title_en else self.title


class ProductImage(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images", verbose_name=_("product"))
    image = models.ImageField(_("image"), upload_to="products/%Y/%m/")
    alt = models.CharField(_("description"), max_length=120, blank=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("product image")
        verbose_name_plural = _("product images")
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.alt or self.image.name


class BuyerField(models.Model):
    """An input the buyer fills in at checkout for manual-delivery products (game ID, server, QQ…)."""

    class Kind(models.TextChoices):
        TEXT = "text", _("text")
        NUMBER = "number", _("digits")
        QQ = "qq", _("QQ number")
        PHONE = "phone", _("mobile phone number")
        EMAIL = "email", _("e-mail address")

    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="buyer_fields", verbose_name=_("product")
    )
    key = models.SlugField(_("key"), max_length=40)
    label = models.CharField(_("label"), max_length=40)
    label_en = models.CharField(_("English label"), max_length=40, blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.TEXT)
    required = models.BooleanField(_("required"), default=True)
    max_length = models.PositiveIntegerField(_("maximum length"), default=64)
    help_text = models.CharField(_("hint"), max_length=120, blank=True)
    help_text_en = models.CharField(_("English hint"), max_length=120, blank=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("buyer input field")
        verbose_name_plural = _("buyer input fields")
        ordering = ["sort_order", "id"]
        constraints = [models.UniqueConstraint(fields=["product", "key"], name="buyer_field_key_unique_per_product")]

    def __str__(self) -> str:
        return self.label


class Sku(models.Model):
    """One denomination of a product ("100元", "30天"), priced in fen."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="skus", verbose_name=_("product"))
    label = models.CharField(_("denomination"), max_length=40)
    label_en = models.CharField(_("English denomination"), max_length=40, blank=True)
    face_value_fen = models.BigIntegerField(_("face value (fen)"), default=0)
    price_fen = models.BigIntegerField(_("price (fen)"))
    cost_fen = models.BigIntegerField(_("cost (fen)"), null=True, blank=True)
    is_active = models.BooleanField(_("on sale"), default=True)
    low_stock_threshold = models.PositiveIntegerField(_("low-stock threshold"), default=10)
    reusable_code = models.BooleanField(
        _("reusable code"), default=False, help_text=_("One code may be sold any number of times.")
    )
    # The delivery SMS (orders/sms.py) carries the codes themselves only where the merchant allows
    # it: an SMS is read on a lock screen and kept by the carrier. Otherwise it carries the order link.
    sms_code_allowed = models.BooleanField(
        _("codes may be sent by SMS"), default=False,
        help_text=_("Buyers who ask for a delivery SMS get this SKU's codes in it, not only the order link."),
    )  # fmt: skip
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        ordering = ["sort_order", "price_fen", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price_fen__gt=0), name="sku_price_positive"),
            models.CheckConstraint(condition=Q(face_value_fen__gte=0), name="sku_face_value_not_negative"),
            models.CheckConstraint(
                condition=Q(cost_fen__isnull=True) | Q(cost_fen__gte=0), name="sku_cost_not_negative"
            ),
            models.UniqueConstraint(fields=["product", "label"], name="sku_label_unique_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.product} · {self.label}"


class LevelPrice(models.Model):
    """An explicit price of one SKU for one member level, set by operators; it wins over the level's
    discount percentage (``accounts/levels.py``, applied by the ``member_level`` pricing rule)."""

    level = models.ForeignKey(MemberLevel, on_delete=models.CASCADE, related_name="prices", verbose_name=_("level"))
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="level_prices", verbose_name=_("SKU"))
    price_fen = models.BigIntegerField(_("level price (fen)"))

    class Meta:
        verbose_name = _("member level price")
        verbose_name_plural = _("member level prices")
        ordering = ["sku_id", "level__threshold_fen"]
        constraints = [
            models.UniqueConstraint(fields=["level", "sku"], name="level_price_once_per_sku"),
            models.CheckConstraint(condition=Q(price_fen__gt=0), name="level_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} · {self.level}"


class ImportBatch(models.Model):
    """One upload of codes: parsed in the background, previewed, then committed or cancelled."""

    class Source(models.TextChoices):
        XLSX = "xlsx", _("Excel (.xlsx)")
        CSV = "csv", _("CSV")
        TEXT = "text", _("pasted text")

    class Mode(models.TextChoices):
        ALL_OR_NOTHING = "all", _("all or nothing")
        VALID_ROWS = "valid", _("import the valid rows")

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("waiting")
        PARSING = "parsing", _("checking")
        READY = "ready", _("ready to confirm")
        COMMITTING = "committing", _("importing")
        COMMITTED = "committed", _("imported")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="import_batches")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="import_batches")
    sku = models.ForeignKey(
        Sku, on_delete=models.PROTECT, null=True, blank=True, related_name="import_batches",
        help_text=_("Empty: each row names its denomination in a column."),
    )  # fmt: skip
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    filename = models.CharField(_("file name"), max_length=200, blank=True)
    # The upload itself, Fernet-encrypted like the codes (it holds plaintext codes), deleted once
    # the batch is committed or cancelled.
    upload_path = models.CharField(max_length=300, blank=True, editable=False)
    delimiter = models.CharField(_("code/password delimiter"), max_length=4, blank=True)
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices, default=Mode.ALL_OR_NOTHING)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.UPLOADED)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows checked"), default=0)
    valid_rows = models.PositiveIntegerField(_("valid rows"), default=0)
    error_rows = models.PositiveIntegerField(_("rows with errors"), default=0)
    imported_rows = models.PositiveIntegerField(_("codes imported"), default=0)
    # [{"row": 12, "reason": "duplicate_in_file", "detail": "..."}], the first ERROR_SAMPLE rows;
    # the full list lives in ImportRow until the batch is finished.
    errors = models.JSONField(_("errors"), default=list, blank=True)
    error_counts = models.JSONField(_("errors by reason"), default=dict, blank=True)
    failure = models.TextField(_("failure"), blank=True)
    task_id = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("import batch")
        verbose_name_plural = _("import batches")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.filename or self.get_source_display()}"

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status in {self.Status.READY, self.Status.COMMITTED} else 0
        return min(100, self.processed_rows * 100 // self.total_rows)


class ImportRow(models.Model):
    """A parsed row of a batch waiting for the merchant's confirmation (encrypted like CardCode)."""

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="rows")
    row_number = models.PositiveIntegerField()
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, null=True)
    payload = models.TextField(blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    hint = models.CharField(max_length=24, blank=True)
    error = models.CharField(max_length=32, blank=True)
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["batch", "row_number"]), models.Index(fields=["sku", "fingerprint"])]

    def __str__(self) -> str:
        return f"{self.batch_id}:{self.row_number}"


class CardCodeQuerySet(models.QuerySet):
    def for_sale(self, *, now):
        """Codes allocation may take: available, or reserved by an order whose hold has passed."""
        return self.filter(
            Q(status=CardCode.Status.AVAILABLE) | Q(status=CardCode.Status.RESERVED, reserved_until__lt=now)
        )


class CardCode(models.Model):
    """One card code (卡密). Plaintext never touches this table: see catalog/codes.py."""

    class Status(models.TextChoices):
        AVAILABLE = "available", _("available")
        RESERVED = "reserved", _("reserved")
        SOLD = "sold", _("sold")
        VOID = "void", _("void")

    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="codes", verbose_name=_("SKU"))
    batch = models.ForeignKey(
        ImportBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="codes", verbose_name=_("batch")
    )
    payload = models.TextField(_("encrypted code"), editable=False)
    fingerprint = models.CharField(max_length=64, editable=False)
    hint = models.CharField(_("code"), max_length=24, editable=False, help_text=_("Masked."))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.AVAILABLE)
    reserved_until = models.DateTimeField(_("reserved until"), null=True, blank=True)
    # Copied from the SKU when the code is added, so the database itself can refuse a second sale
    # of a single-use code (constraint below) without a join.
    reusable = models.BooleanField(_("reusable"), default=False, editable=False)
    times_sold = models.PositiveIntegerField(_("times sold"), default=0)
    sold_at = models.DateTimeField(_("sold"), null=True, blank=True)
    voided_at = models.DateTimeField(_("voided"), null=True, blank=True)
    created_at = models.DateTimeField(_("added"), auto_now_add=True)

    objects = CardCodeQuerySet.as_manager()

    class Meta:
        verbose_name = _("card code")
        verbose_name_plural = _("card codes")
        ordering = ["id"]
        permissions = [("reveal_cardcode", "Can reveal and export full card codes")]
        indexes = [
            models.Index(fields=["sku", "status"], name="cardcode_sku_status"),
            # Allocation and stock counts read the SKU's available codes in id order through this
            # index: as many entries as they need, however many codes the SKU holds or has sold.
            models.Index(fields=["sku", "id"], name="cardcode_available", condition=Q(status="available")),
            # ... and the reservations whose deadline passed (for sale again, before the sweep frees them).
            models.Index(
                fields=["sku", "reserved_until"], name="cardcode_reserved_until", condition=Q(status="reserved")
            ),
            models.Index(fields=["sold_at"], name="cardcode_sold_at", condition=Q(sold_at__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["sku", "fingerprint"], name="cardcode_unique_per_sku"),
            models.CheckConstraint(
                condition=~Q(status="reserved") | Q(reserved_until__isnull=False), name="cardcode_reserved_has_deadline"
            ),
            models.CheckConstraint(
                condition=~Q(status="sold") | Q(sold_at__isnull=False), name="cardcode_sold_has_time"
            ),
            models.CheckConstraint(
                condition=~Q(status="void") | Q(voided_at__isnull=False), name="cardcode_void_has_time"
            ),
            # The database, not only Python, refuses a second sale of a single-use code.
            models.CheckConstraint(
                condition=Q(reusable=True) | Q(times_sold__lte=1), name="cardcode_single_use_sold_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hint} ({self.get_status_display()})"

    def __repr__(self) -> str:
        return f"<CardCode {self.pk} {self.status} {self.hint}>"


class StockAlert(models.Model):
    """One low-stock episode of a SKU: opened when available ≤ threshold, closed when restocked."""

    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="stock_alerts", verbose_name=_("SKU"))
    available_at_open = models.PositiveIntegerField(_("available when raised"))
    threshold = models.PositiveIntegerField(_("threshold"))
    opened_at = models.DateTimeField(_("raised"), auto_now_add=True)
    notified_at = models.DateTimeField(_("notified"), null=True, blank=True)
    closed_at = models.DateTimeField(_("restocked"), null=True, blank=True)

    class Meta:
        verbose_name = _("low-stock alert")
        verbose_name_plural = _("low-stock alerts")
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["sku"], condition=Q(closed_at__isnull=True), name="stock_alert_one_open_per_sku"
            )
        ]

    def __str__(self) -> str:
        return f"{self.sku} ≤ {self.threshold}"


class CodeAccess(models.Model):
    """Every time a person saw full codes: a reveal in admin or a full stock export."""

    class Kind(models.TextChoices):
        REVEAL = "reveal", _("reveal")
        EXPORT = "export", _("full export")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="code_accesses")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="code_accesses")
    code = models.ForeignKey(CardCode, on_delete=models.SET_NULL, null=True, blank=True, related_name="accesses")
    code_count = models.PositiveIntegerField(_("codes"), default=1)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("code access record")
        verbose_name_plural = _("code access records")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.user} · {self.code_count}"


class Favourite(models.Model):
    """A product a shopper keeps an eye on (/me/favourites/), with opt-in e-mail notices.

    ``seen_price_fen`` and ``seen_in_stock`` are what the shopper was last told (or saw when the
    notices were switched on): a notice goes out only when the product is cheaper than that, or in
    stock when it was not, and both move to the new state as it is noticed — so a repeated save,
    a second import or a retried check sends nothing more (catalog/favourites.py).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favourites")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="favourites")
    notify = models.BooleanField(_("price-drop and back-in-stock e-mails"), default=False)
    # The language the shopper used when switching notices on: their e-mails are written in it.
    language = models.CharField(max_length=8, blank=True, editable=False)
    seen_price_fen = models.BigIntegerField(null=True, blank=True, editable=False)
    seen_in_stock = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(_("added"), auto_now_add=True)

    class Meta:
        verbose_name = _("favourite")
        verbose_name_plural = _("favourites")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "product"], name="favourite_once_per_user")]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="favourite_user_newest"),
            models.Index(fields=["product"], name="favourite_notify", condition=Q(notify=True)),
        ]

    def __str__(self) -> str:
        return f"{self.user} ♥ {self.product}"


class FavouriteNotice(models.Model):
    """One e-mail to one shopper about what changed on their favourites (price drops, back in stock).

    Written in the transaction that noticed the change and sent by a task queued on commit, which
    claims ``sent_at`` first: a repeated task sends nothing; one whose queueing was lost is queued
    again by the periodic sweep.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favourite_notices")
    language = models.CharField(max_length=8, blank=True)
    # [{"product": id, "kind": "price_drop"|"back_in_stock", "old_fen": int|None, "new_fen": int}]
    items = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("favourite notice")
        verbose_name_plural = _("favourite notices")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="favourite_notice_unsent", condition=Q(sent_at__isnull=True))
        ]

    def __str__(self) -> str:
        return f"{self.user} · {len(self.items)}"


from catalog.models.content import Tag  # noqa: E402, F401  (product tags)
from catalog.models.home import HomeSection, HomeSlide, ProductSalesRollup  # noqa: E402, F401  (home page)
from catalog.models.reviews import ProductRelation, Review  # noqa: E402, F401
from catalog.models.shop import FooterPage, ShopSettings  # noqa: E402, F401
