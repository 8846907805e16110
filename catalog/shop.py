"""The shop's settings as pages read them: one cached snapshot, the images' processing, sanitising.

* **Snapshot** — :func:`snapshot` is a plain dict of the ``ShopSettings`` row (pk 1; defaults when
  there is none) and the published footer pages' titles, under one cache key (:data:`CACHE_KEY`,
  no expiry), dropped on every save or delete of either model (and again after the commit). A warm
  page therefore makes no query for it. :func:`context` (the ``shop`` context processor) turns it
  into what templates read — ``{{ shop.name }}``, ``shop.brand``, ``shop.announcement``… — in the
  request's language, checking the announcement's window against the clock at each request.
* **Images** — :func:`sniff` checks an upload with Pillow (JPEG, PNG, WebP or GIF, whatever its
  name or content type says; size and pixel limits; a corrupt file is refused) the way
  marketing/campaigns.py treats a campaign banner. :func:`process_logo` re-encodes the logo as PNG
  (at most 512 px a side, metadata dropped) and makes the square icons from it: the favicon (64 px)
  and the installable web app's 192 and 512 px icons. An uploaded favicon is squared to 64 px; the
  WeChat QR code is re-encoded at most 400 px.
* **Rich text** — :func:`sanitise` is nh3 with a small list of tags and attributes; footer pages
  are cleaned on save and again on render.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import nh3
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from PIL import Image

from kameng import images

CACHE_KEY = "catalog:shop:v1"

THEMES = {
    # name: (brand, darker shade for hover and text on light backgrounds, soft tint for backgrounds)
    "red": ("#e4393c", "#c22a2d", "#fff5f5"),
    "blue": ("#1677ff", "#0958d9", "#f0f6ff"),
    "purple": ("#7b3fe4", "#5b21b6", "#f6f0ff"),
}
DEFAULT_NAME = {"zh-hans": "卡盟", "en": "Kameng"}

IMAGE_MAX_BYTES = 4 * 1024 * 1024
IMAGE_MAX_PIXELS = 25_000_000
LOGO_MAX = 512
FAVICON_SIZE = 64
ICON_SIZES = (192, 512)
QR_MAX = 400

ALLOWED_TAGS = {
    "h2", "h3", "h4", "p", "br", "hr", "strong", "b", "em", "i", "u", "s", "ul", "ol", "li", "a",
    "blockquote", "table", "thead", "tbody", "tr", "th", "td", "code", "pre", "span", "div", "img",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "th": {"colspan"},
    "td": {"colspan"},
}


def sanitise(html: str) -> str:
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        clean_content_tags={"script", "style"},
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer nofollow",
    )


# -- images --------------------------------------------------------------------------------------------------


def sniff(upload, *, min_side: int = 32) -> Image.Image:
    """The upload as an RGBA image (first frame), or ``ValidationError`` saying why not."""
    image, _data = images.open_upload(
        upload,
        min_size=(min_side, min_side),
        too_small=_("The picture is %(width)s × %(height)s pixels; at least %(min_w)s × %(min_h)s are needed."),
        max_bytes=IMAGE_MAX_BYTES,
        max_pixels=IMAGE_MAX_PIXELS,
    )
    return image.convert("RGBA")


def _png(image: Image.Image, name: str) -> ContentFile:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    digest = hashlib.sha256(out.getvalue()).hexdigest()[:10]
    return ContentFile(out.getvalue(), name=f"{name}-{digest}.png")


def _square(image: Image.Image, size: int, *, background=(255, 255, 255, 255), padding: float = 0.1) -> Image.Image:
    inner = max(1, round(size * (1 - 2 * padding)))
    fitted = image.copy()
    fitted.thumbnail((inner, inner), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), background)
    canvas.alpha_composite(fitted, ((size - fitted.width) // 2, (size - fitted.height) // 2))
    return canvas


@dataclass(frozen=True)
class Logo:
    logo: ContentFile
    favicon: ContentFile
    icons: dict[int, ContentFile]


def process_logo(upload) -> Logo:
    image = sniff(upload, min_side=32)
    logo = image.copy()
    logo.thumbnail((LOGO_MAX, LOGO_MAX), Image.Resampling.LANCZOS)
    return Logo(
        logo=_png(logo, "logo"),
        favicon=_png(_square(image, FAVICON_SIZE, background=(0, 0, 0, 0), padding=0), "favicon"),
        icons={size: _png(_square(image, size), f"icon-{size}") for size in ICON_SIZES},
    )


def process_favicon(upload) -> ContentFile:
    return _png(_square(sniff(upload, min_side=16), FAVICON_SIZE, background=(0, 0, 0, 0), padding=0), "favicon")


def process_qr(upload) -> ContentFile:
    image = sniff(upload, min_side=100)
    image.thumbnail((QR_MAX, QR_MAX), Image.Resampling.LANCZOS)
    return _png(image, "wechat-qr")


# -- the cached snapshot -------------------------------------------------------------------------------------


def _url(field) -> str:
    return field.url if field else ""


def _build() -> dict:
    from catalog.models import FooterPage, ShopSettings

    row = ShopSettings.objects.filter(pk=1).first() or ShopSettings()
    pages = [
        {"slug": page.slug, "title": page.title, "title_en": page.title_en}
        for page in FooterPage.objects.filter(is_published=True).only("slug", "title", "title_en")
    ]
    return {
        "name": row.name,
        "name_en": row.name_en,
        "tagline": row.tagline,
        "tagline_en": row.tagline_en,
        "logo": _url(row.logo),
        "favicon": _url(row.favicon),
        "icons": {size: _url(getattr(row, f"icon_{size}")) for size in ICON_SIZES},
        "theme": row.theme,
        "custom_colour": row.custom_colour,
        "announcement": row.announcement,
        "announcement_en": row.announcement_en,
        "announcement_url": row.announcement_url,
        "announcement_starts_at": row.announcement_starts_at.isoformat() if row.announcement_starts_at else "",
        "announcement_ends_at": row.announcement_ends_at.isoformat() if row.announcement_ends_at else "",
        "qq": row.service_qq,
        "wechat_qr": _url(row.service_wechat_qr),
        "wechat_id": row.service_wechat_id,
        "telegram": row.service_telegram,
        "email": row.service_email,
        "hours": row.service_hours,
        "hours_en": row.service_hours_en,
        "icp": row.icp_number,
        "police": row.police_number,
        "version": row.updated_at.isoformat() if row.updated_at else "",
        "pages": pages,
    }


def snapshot() -> dict:
    data = cache.get(CACHE_KEY)
    if data is None:
        data = _build()
        cache.set(CACHE_KEY, data, None)
    return data


def forget(**kwargs) -> None:
    cache.delete(CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(CACHE_KEY))


def colours(data: dict) -> tuple[str, str, str]:
    if data["theme"] == "custom" and data["custom_colour"]:
        brand = data["custom_colour"].lower()
        return brand, _shade(brand, 0.8), _tint(brand, 0.94)
    return THEMES.get(data["theme"], THEMES["red"])


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _shade(colour: str, factor: float) -> str:
    return "#" + "".join(f"{round(c * factor):02x}" for c in _rgb(colour))


def _tint(colour: str, amount: float) -> str:
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in _rgb(colour))


def _pick(data: dict, field: str, language: str) -> str:
    if language == "en" and data.get(f"{field}_en"):
        return data[f"{field}_en"]
    return data.get(field, "")


def notice_version(data: dict) -> str:
    text = f"{data['announcement']}|{data['announcement_en']}|{data['announcement_url']}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


NOTICE_COOKIE = "kameng_notice_off"


def _announcement(data: dict, language: str, request) -> dict | None:
    text = _pick(data, "announcement", language)
    if not text:
        return None
    now = timezone.now()
    starts = parse_datetime(data["announcement_starts_at"]) if data["announcement_starts_at"] else None
    ends = parse_datetime(data["announcement_ends_at"]) if data["announcement_ends_at"] else None
    if (starts and now < starts) or (ends and now >= ends):
        return None
    version = notice_version(data)
    if request is not None and request.COOKIES.get(NOTICE_COOKIE) == version:
        return None
    return {"text": text, "url": data["announcement_url"], "version": version}


def context(request=None) -> dict:
    data = snapshot()
    language = translation.get_language() or settings.LANGUAGE_CODE
    name = _pick(data, "name", language) or DEFAULT_NAME.get(language, DEFAULT_NAME["zh-hans"])
    brand, brand_dark, brand_soft = colours(data)
    pages = [{"slug": page["slug"], "title": _pick(page, "title", language)} for page in data["pages"]]
    has_contacts = any(data[key] for key in ("qq", "wechat_qr", "wechat_id", "telegram", "email"))
    return {
        "name": name,
        "tagline": _pick(data, "tagline", language),
        "logo": data["logo"],
        "favicon": data["favicon"],
        "icons": data["icons"],
        "brand": brand,
        "brand_dark": brand_dark,
        "brand_soft": brand_soft,
        "announcement": _announcement(data, language, request),
        "qq": data["qq"],
        "wechat_qr": data["wechat_qr"],
        "wechat_id": data["wechat_id"],
        "telegram": data["telegram"],
        "email": data["email"],
        "hours": _pick(data, "hours", language),
        "has_contacts": has_contacts,
        "icp": data["icp"],
        "police": data["police"],
        "police_code": "".join(ch for ch in data["police"] if ch.isdigit()),
        "pages": pages,
    }
