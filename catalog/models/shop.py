"""The shop's own settings (one row) and its footer pages, edited by operators in admin.

Read through catalog/shop.py (one cached snapshot, dropped on every save); see docs/ARCHITECTURE.md
"Shop settings".
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("A colour as #rrggbb, e.g. #e4393c."))


class ShopSettings(models.Model):
    """The shop's name, look, announcement, customer service and filings. There is one row (pk 1)."""

    class Theme(models.TextChoices):
        RED = "red", _("Kameng red")
        BLUE = "blue", _("Tech blue")
        PURPLE = "purple", _("Gamer purple")
        CUSTOM = "custom", _("Custom colour")

    name = models.CharField(_("shop name"), max_length=40, blank=True, help_text=_("Empty: 卡盟 / Kameng."))
    name_en = models.CharField(_("English shop name"), max_length=40, blank=True)
    tagline = models.CharField(_("tagline"), max_length=40, blank=True)
    tagline_en = models.CharField(_("English tagline"), max_length=60, blank=True)
    logo = models.ImageField(_("logo"), upload_to="shop/", blank=True)
    favicon = models.ImageField(
        _("favicon"), upload_to="shop/", blank=True, help_text=_("Empty: made from the logo (or the default).")
    )
    icon_192 = models.ImageField(upload_to="shop/", blank=True, editable=False)
    icon_512 = models.ImageField(upload_to="shop/", blank=True, editable=False)
    theme = models.CharField(_("theme"), max_length=10, choices=Theme.choices, default=Theme.RED)
    custom_colour = models.CharField(
        _("custom colour"), max_length=7, blank=True, validators=[colour_validator], help_text=_("#rrggbb")
    )

    announcement = models.CharField(_("announcement"), max_length=200, blank=True)
    announcement_en = models.CharField(_("English announcement"), max_length=200, blank=True)
    announcement_url = models.CharField(_("announcement link"), max_length=200, blank=True)
    announcement_starts_at = models.DateTimeField(_("announcement from"), null=True, blank=True)
    announcement_ends_at = models.DateTimeField(_("announcement until"), null=True, blank=True)

    service_qq = models.CharField(_("customer-service QQ"), max_length=20, blank=True)
    service_wechat_qr = models.ImageField(_("WeChat QR code"), upload_to="shop/", blank=True)
    service_wechat_id = models.CharField(_("WeChat ID"), max_length=40, blank=True)
    service_telegram = models.CharField(_("Telegram"), max_length=40, blank=True, help_text=_("Without the @."))
    service_email = models.EmailField(_("customer-service e-mail"), blank=True)
    service_hours = models.CharField(_("service hours"), max_length=60, blank=True)
    service_hours_en = models.CharField(_("English service hours"), max_length=60, blank=True)

    icp_number = models.CharField(
        _("ICP filing number"), max_length=40, blank=True, help_text=_("e.g. 京ICP备12345678号-1")
    )
    police_number = models.CharField(
        _("public-security filing number"), max_length=40, blank=True, help_text=_("e.g. 京公网安备11010502000001号")
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("shop settings")
        verbose_name_plural = _("shop settings")

    def __str__(self) -> str:
        return str(_("Shop settings"))

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)


class FooterPage(models.Model):
    """About, terms, privacy, refund policy, FAQ…: rich text, sanitised on save and on render."""

    slug = models.SlugField(_("slug"), max_length=40, unique=True)
    title = models.CharField(_("title"), max_length=60)
    title_en = models.CharField(_("English title"), max_length=60, blank=True)
    body = models.TextField(_("text"), blank=True, help_text=_("HTML: headings, paragraphs, lists, links, tables."))
    body_en = models.TextField(_("English text"), blank=True)
    is_published = models.BooleanField(_("published"), default=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("footer page")
        verbose_name_plural = _("footer pages")
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs):
        from catalog.shop import sanitise

        self.body = sanitise(self.body)
        self.body_en = sanitise(self.body_en)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("shop:page", kwargs={"slug": self.slug})
