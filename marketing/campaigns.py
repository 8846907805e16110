"""Campaign pages (models in marketing/models/campaigns.py): the banner's processing, the flash
specials that price the featured SKUs, the cached list of campaigns for the home page's slot, the
page's reads and the share image.

* **Banner** — :func:`process_banner` sniffs the upload with Pillow (JPEG, PNG, WebP or GIF; the file
  name and the browser's content type are not trusted), refuses anything else with a message, crops it
  to 3:1 and re-encodes it as JPEG at :data:`BANNER_SIZE` (the campaign header and the home slot on a
  desktop) and :data:`BANNER_SMALL_SIZE` (phones). Metadata (EXIF, ICC, comments) is not kept.
* **Pricing** — each ``CampaignItem`` owns one ``FlashSpecial`` with the campaign's window, the item's
  price, cap and limit (empty = :data:`NO_LIMIT`) and ``active`` = the campaign's ``enabled``.
  :func:`sync_item` keeps it in step after every save of the campaign or the item (signals below, so
  admin, shell and tests alike); a deleted item's special is switched off, kept for its redemptions.
  Checkout therefore needs nothing from campaigns: the ``flash_special`` rule prices the line, caps it
  at cost (the engine's floor) and holds the units (marketing/specials.py).
* **What runs** — :func:`not_over` is the cached list (``marketing:campaigns:v1``, 60 s, dropped on any
  save or delete of a campaign or item, and again after the commit) of enabled campaigns not yet
  ended; :func:`running` filters it by the clock at each call, so a campaign leaves the home page the
  second its window ends, whatever the cache holds. No query in the steady state.
* **Share image** — :func:`render_share` draws a 1200 × 630 PNG (the size Open Graph and WeChat expect):
  the banner, the title, the best special price against the list price and a QR code (segno) of the
  page's address under ``settings.SITE_URL``, with the first CJK font found (``CAMPAIGN_SHARE_FONTS``;
  Pillow's own font when none is installed: Chinese then shows as boxes, the image is still made).
  :func:`refresh_share` redraws it when what it shows changed (``share_key``), after every save.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import segno
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.db.models.signals import post_delete, post_save
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFont, ImageOps

from catalog.allocation import for_sale_parts
from catalog.models import CardCode, Product
from kameng import images
from kameng.money import fen_to_yuan_str
from marketing.models import Campaign, CampaignItem, FlashSpecial

logger = logging.getLogger(__name__)

NO_LIMIT = 1_000_000_000  # an item's empty cap or per-buyer limit, as its flash special stores it

BANNER_SIZE = (1440, 480)
BANNER_SMALL_SIZE = (720, 240)
BANNER_MIN_SIZE = (600, 200)

SHARE_SIZE = (1200, 630)

CACHE_KEY = "marketing:campaigns:v1"
CACHE_SECONDS = 60


# -- banner --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Banner:
    large: ContentFile
    small: ContentFile


def process_banner(upload, *, stem: str = "banner") -> Banner:
    """The upload, checked and re-encoded at both sizes; ``ValidationError`` with the reason otherwise."""
    image, data = images.open_upload(
        upload,
        min_size=BANNER_MIN_SIZE,
        too_small=_("The picture is %(width)s × %(height)s pixels; a banner needs at least %(min_w)s × %(min_h)s."),
        too_large=_("The banner is too large: at most %(size)s MB."),
    )
    image = image.convert("RGB")
    digest = hashlib.sha256(data).hexdigest()[:10]
    return Banner(
        large=images.fit_jpeg(image, BANNER_SIZE, f"{stem}-{digest}.jpg"),
        small=images.fit_jpeg(image, BANNER_SMALL_SIZE, f"{stem}-{digest}-small.jpg"),
    )


# -- the flash specials that price the items -----------------------------------------------------------------


def _special_fields(item: CampaignItem, campaign: Campaign) -> dict:
    return {
        "sku_id": item.sku_id,
        "special_price_fen": item.special_price_fen,
        "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at,
        "quantity_cap": item.quantity_cap if item.quantity_cap is not None else NO_LIMIT,
        "per_buyer_limit": item.per_buyer_limit if item.per_buyer_limit is not None else NO_LIMIT,
        "funded_by": item.funded_by,
        "active": campaign.enabled,
    }


def sync_item(item: CampaignItem, campaign: Campaign | None = None) -> FlashSpecial:
    """Create or update the item's flash special from the item and its campaign (in the caller's
    transaction). A special already used for another SKU is switched off and a new one made."""
    campaign = campaign or item.campaign
    fields = _special_fields(item, campaign)
    with transaction.atomic():
        special = (
            FlashSpecial.objects.select_for_update().filter(pk=item.special_id).first() if item.special_id else None
        )
        if special is not None and special.sku_id != item.sku_id:
            FlashSpecial.objects.filter(pk=special.pk).update(active=False)
            special = None
        if special is None:
            special = FlashSpecial.objects.create(**fields)
            CampaignItem.objects.filter(pk=item.pk).update(special=special)
            item.special = special
        else:
            FlashSpecial.objects.filter(pk=special.pk).update(**fields)
    return special


def sync_campaign(campaign: Campaign) -> None:
    with transaction.atomic():
        for item in campaign.items.order_by("special_id", "pk"):  # lock order: the specials by ascending id
            sync_item(item, campaign)


# -- what runs: one cached list ------------------------------------------------------------------------------


def not_over() -> list[Campaign]:
    """Enabled campaigns not yet ended, highest priority first (cached)."""
    cached = cache.get(CACHE_KEY)
    if cached is None:
        cached = list(
            Campaign.objects.filter(enabled=True, ends_at__gt=timezone.now())
            .order_by("-priority", "starts_at", "pk")
            .only("pk", "title", "title_en", "slug", "banner", "banner_small", "starts_at", "ends_at", "priority")
        )
        cache.set(CACHE_KEY, cached, CACHE_SECONDS)
    return cached


def running(now=None) -> list[Campaign]:
    now = now or timezone.now()
    return [campaign for campaign in not_over() if campaign.starts_at <= now < campaign.ends_at]


def forget(**kwargs) -> None:
    cache.delete(CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(CACHE_KEY))


# -- the page ------------------------------------------------------------------------------------------------


@dataclass
class Card:
    """What the page shows of one featured SKU."""

    item: CampaignItem
    state: str  # "on_sale", "special_sold_out" (the cap is reached: list price), "sold_out", "off_sale"

    @property
    def sku(self):
        return self.item.sku

    @property
    def product(self):
        return self.item.sku.product

    @property
    def saving_fen(self) -> int:
        return max(0, self.item.sku.price_fen - self.item.special_price_fen)


def cards(campaign: Campaign) -> list[Card]:
    """The featured SKUs with their product, special and whether any code is for sale (one query)."""
    available, expired = for_sale_parts()
    codes = CardCode.objects.filter(sku=OuterRef("sku_id"))
    items = (
        CampaignItem.objects.filter(campaign=campaign)
        .select_related("sku__product__category", "special")
        .annotate(has_codes=Exists(codes.filter(available)) | Exists(codes.filter(expired)))
        .order_by("sort_order", "pk")
    )
    result = []
    for item in items:
        sku, product = item.sku, item.sku.product
        if not (sku.is_active and product.status == Product.Status.LISTED):
            state = "off_sale"
        elif product.delivery_mode == Product.DeliveryMode.AUTOMATIC and not item.has_codes:
            state = "sold_out"
        elif item.special is not None and item.special.sold >= item.special.quantity_cap:
            state = "special_sold_out"
        else:
            state = "on_sale"
        result.append(Card(item, state))
    return result


def best_price(campaign: Campaign) -> tuple[int, int] | None:
    """(special price, list price) of the item saving most, for the share image."""
    items = list(campaign.items.select_related("sku"))
    if not items:
        return None
    best = max(items, key=lambda item: (item.sku.price_fen - item.special_price_fen, -item.pk))
    return best.special_price_fen, best.sku.price_fen


# -- share image ---------------------------------------------------------------------------------------------


def page_url(campaign: Campaign) -> str:
    return settings.SITE_URL.rstrip("/") + campaign.get_absolute_url()


def share_url(campaign: Campaign) -> str:
    address = settings.SITE_URL.rstrip("/") + reverse("marketing:campaign_share", kwargs={"slug": campaign.slug})
    return f"{address}?v={campaign.share_key[:8]}" if campaign.share_key else address


def _font(size: int):
    for path in getattr(settings, "CAMPAIGN_SHARE_FONTS", []):
        if path and Path(path).exists():
            try:
                return ImageFont.truetype(path, size)
            except OSError:
                continue
    return ImageFont.load_default(size=size)


def _yuan(fen: int) -> str:
    return "¥" + fen_to_yuan_str(fen).removesuffix(".00")


def _share_key(campaign: Campaign, price) -> str:
    parts = [campaign.title, campaign.banner.name or "", page_url(campaign), repr(price), "v1"]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# Where the QR code sits in the share image (tests read it back): its top-left corner and module size.
QR_ORIGIN = (880, 290)
QR_MODULE = 8


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def render_share(campaign: Campaign, *, price=None) -> bytes:
    """The share image as PNG bytes (see the module's docstring)."""
    width, height = SHARE_SIZE
    brand = (228, 57, 60)
    image = Image.new("RGB", SHARE_SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    # The banner across the top, 1200 × 400 (3:1 like the upload).
    try:
        with campaign.banner.open("rb") as stored, Image.open(stored) as banner:
            image.paste(ImageOps.fit(banner.convert("RGB"), (width, 260), method=Image.Resampling.LANCZOS), (0, 0))
    except (ValueError, OSError, FileNotFoundError):  # no banner (yet): the brand colour
        draw.rectangle((0, 0, width, 260), fill=brand)
    with translation.override(settings.LANGUAGE_CODE):
        title_font, price_font, small_font = _font(56), _font(64), _font(28)
        draw.text((48, 290), _fit_text(draw, campaign.title, title_font, 780), font=title_font, fill=(34, 34, 34))
        if price is not None:
            special, listed = price
            label = _("Campaign price")
            draw.text((48, 390), label, font=small_font, fill=(119, 119, 119))
            x = 48 + draw.textlength(label, font=small_font) + 16
            draw.text((x, 370), _yuan(special), font=price_font, fill=brand)
            x += draw.textlength(_yuan(special), font=price_font) + 20
            old = _yuan(listed)
            draw.text((x, 398), old, font=small_font, fill=(150, 150, 150))
            strike_y = 398 + 17
            draw.line((x, strike_y, x + draw.textlength(old, font=small_font), strike_y), fill=(150, 150, 150), width=2)
        window = _("%(start)s – %(end)s") % {
            "start": timezone.localtime(campaign.starts_at).strftime("%m-%d %H:%M"),
            "end": timezone.localtime(campaign.ends_at).strftime("%m-%d %H:%M"),
        }
        draw.text((48, 480), window, font=small_font, fill=(119, 119, 119))
        draw.text((48, 540), _("Scan the code to join"), font=small_font, fill=brand)
    qr = segno.make(page_url(campaign), error="m")
    matrix = [list(row) for row in qr.matrix]
    side = len(matrix) * QR_MODULE
    ox, oy = QR_ORIGIN
    ox = min(ox, width - side - 24)
    oy = min(oy, height - side - 16)
    draw.rectangle(
        (ox - 2 * QR_MODULE, oy - 2 * QR_MODULE, ox + side + 2 * QR_MODULE, oy + side + 2 * QR_MODULE), fill="white"
    )
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                left, top = ox + x * QR_MODULE, oy + y * QR_MODULE
                draw.rectangle((left, top, left + QR_MODULE - 1, top + QR_MODULE - 1), fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def qr_placement(campaign: Campaign) -> tuple[int, int, int, list[list[bool]]]:
    """(left, top, module size, matrix) of the QR code :func:`render_share` draws."""
    matrix = [[bool(v) for v in row] for row in segno.make(page_url(campaign), error="m").matrix]
    side = len(matrix) * QR_MODULE
    left = min(QR_ORIGIN[0], SHARE_SIZE[0] - side - 24)
    top = min(QR_ORIGIN[1], SHARE_SIZE[1] - side - 16)
    return left, top, QR_MODULE, matrix


def refresh_share(campaign_id: int, *, force: bool = False) -> bool:
    """Redraw the share image when what it shows changed; True when it was drawn."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return False
    price = best_price(campaign)
    key = _share_key(campaign, price)
    if (
        not force
        and key == campaign.share_key
        and campaign.share_image
        and campaign.share_image.storage.exists(campaign.share_image.name)
    ):
        return False
    old = campaign.share_image.name
    png = render_share(campaign, price=price)
    name = campaign.share_image.storage.save(
        campaign.share_image.field.generate_filename(campaign, f"{campaign.slug}-{key[:8]}.png"), ContentFile(png)
    )
    Campaign.objects.filter(pk=campaign.pk).update(share_image=name, share_key=key)
    if old and old != name:
        campaign.share_image.storage.delete(old)
    return True


def _schedule_share(campaign_id: int) -> None:
    from marketing import tasks

    transaction.on_commit(lambda: tasks.render_campaign_share.delay(campaign_id))


# -- signals: every save keeps the specials, the cache and the share image in step ---------------------------


def _campaign_saved(sender, instance: Campaign, raw=False, **kwargs) -> None:
    if raw:
        return
    sync_campaign(instance)
    forget()
    _schedule_share(instance.pk)


def _item_saved(sender, instance: CampaignItem, raw=False, **kwargs) -> None:
    if raw:
        return
    sync_item(instance)
    forget()
    _schedule_share(instance.campaign_id)


def _item_deleted(sender, instance: CampaignItem, **kwargs) -> None:
    if instance.special_id:
        FlashSpecial.objects.filter(pk=instance.special_id).update(active=False)
    forget()
    if Campaign.objects.filter(pk=instance.campaign_id).exists():
        _schedule_share(instance.campaign_id)


def connect() -> None:
    post_save.connect(_campaign_saved, sender=Campaign, dispatch_uid="marketing.campaigns.saved")
    post_delete.connect(forget, sender=Campaign, dispatch_uid="marketing.campaigns.deleted")
    post_save.connect(_item_saved, sender=CampaignItem, dispatch_uid="marketing.campaigns.item_saved")
    post_delete.connect(_item_deleted, sender=CampaignItem, dispatch_uid="marketing.campaigns.item_deleted")
