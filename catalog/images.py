"""Product images: checked and re-encoded at upload, thumbnails made once, placeholders per category.

* :func:`clean_upload` sniffs the file's real type with Pillow (the name and the browser's content
  type are not trusted), refuses what is not a JPEG/PNG/WebP/GIF picture, files over
  ``MAX_UPLOAD_BYTES`` and pictures over ``MAX_PIXELS`` (decompression bombs), then re-encodes it as
  WebP: EXIF (GPS, camera), ICC and comments are gone, and so is anything hidden after the image
  data. The admin forms call it; so does the demo seed.
* :func:`make_renditions` writes the thumbnails the pages use next to the original, at upload
  (``catalog.signals``): 16:9 crops ``RENDITION_WIDTHS`` wide. Their names follow from the
  original's, so templates build ``src``/``srcset`` without a query (``catalog_content`` tags).
* :func:`placeholder_data_uri` draws the picture shown for a product without an image: the
  category's colour and its first character, an SVG generated once per (colour, character).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import posixpath
import warnings
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000  # e.g. 8000×5000; a bigger canvas is refused before it is decoded
MAX_SIDE = 2400  # the re-encoded original fits in this square
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
QUALITY = 82

# The sizes the pages show (CSS pixels, 16:9) and the widths written for them (1x and 2x).
SIZES = {"card": (320, 180), "page": (640, 360), "thumb": (160, 90)}
RENDITION_WIDTHS = (160, 320, 640, 1280)

# Categories without a colour of their own get one of these, chosen by their slug.
PALETTE = ["#e4572e", "#2e86ab", "#7b2cbf", "#2a9d8f", "#e9a23b", "#d1495b", "#3d5a80", "#588157"]


def clean_upload(upload) -> ContentFile:
    """The uploaded picture re-encoded as WebP (a new file, named ``<original stem>.webp``), or a
    ValidationError saying what is wrong with it."""
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_UPLOAD_BYTES:
        raise ValidationError(
            _("The picture is too large (%(size)s MB); the limit is %(limit)s MB."),
            code="too_large",
            params={"size": f"{size / 1024 / 1024:.1f}", "limit": MAX_UPLOAD_BYTES // 1024 // 1024},
        )
    upload.seek(0)
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(_("The picture is too large; the limit is %(limit)s MB."), code="too_large",
                              params={"limit": MAX_UPLOAD_BYTES // 1024 // 1024})  # fmt: skip
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            if probe.format not in ALLOWED_FORMATS:
                raise ValidationError(
                    _("Upload a JPEG, PNG, WebP or GIF picture (this file is %(format)s)."),
                    code="format",
                    params={"format": probe.format or "?"},
                )
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise ValidationError(
                    _("The picture is %(width)s×%(height)s pixels; the limit is %(limit)s megapixels."),
                    code="too_many_pixels",
                    params={"width": width, "height": height, "limit": MAX_PIXELS // 1_000_000},
                )
            probe.verify()  # a truncated or corrupt file fails here
            image = Image.open(io.BytesIO(data))
            image.load()
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(_("The picture has too many pixels."), code="too_many_pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError(_("This file is not a picture (JPEG, PNG, WebP or GIF)."), code="not_image") from None
    return ContentFile(_encode(_normalised(image)), name=_stem(getattr(upload, "name", "") or "image") + ".webp")


def _normalised(image: Image.Image) -> Image.Image:
    """Upright (EXIF orientation applied), first frame only, RGB or RGBA, within ``MAX_SIDE``."""
    image.seek(0)
    image = ImageOps.exif_transpose(image) or image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    image = image.convert("RGBA" if has_alpha else "RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    # No exif=, icc_profile= or xmp= arguments: Pillow writes none of the source's metadata.
    image.save(out, "WEBP", quality=QUALITY, method=4)
    return out.getvalue()


def _stem(name: str) -> str:
    base = posixpath.basename(name.replace("\\", "/"))
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return stem[:60] or "image"


def rendition_name(name: str, width: int) -> str:
    """Where the ``width``-pixel 16:9 thumbnail of the stored image ``name`` lives."""
    directory, base = posixpath.split(name)
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return posixpath.join(directory, "thumbs", f"{stem}-{width}.webp")


def make_renditions(name: str, *, storage=None, force: bool = False) -> list[str]:
    """Write the thumbnails of the stored image ``name`` that are missing (all with ``force``)."""
    storage = storage or default_storage
    wanted = [w for w in RENDITION_WIDTHS if force or not storage.exists(rendition_name(name, w))]
    if not wanted:
        return []
    with storage.open(name, "rb") as handle:
        image = Image.open(handle)
        image.load()
    image = image.convert("RGBA" if image.mode in ("RGBA", "LA") else "RGB")
    written = []
    for width in wanted:
        target = rendition_name(name, width)
        thumb = ImageOps.fit(image, (width, width * 9 // 16), Image.Resampling.LANCZOS)
        if storage.exists(target):
            storage.delete(target)
        written.append(storage.save(target, ContentFile(_encode(thumb))))
    return written


def rendition_urls(name: str, size: str) -> tuple[str, str, int, int]:
    """``(src, srcset, width, height)`` of the stored image ``name`` shown at ``size``."""
    width, height = SIZES[size]
    one, two = (default_storage.url(rendition_name(name, w)) for w in (width, width * 2))
    return one, f"{one} 1x, {two} 2x", width, height


def category_colour(category) -> str:
    colour = getattr(category, "colour", "") or ""
    if len(colour) == 7 and colour.startswith("#"):
        return colour
    digest = hashlib.sha256((getattr(category, "slug", "") or "").encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


@functools.lru_cache(maxsize=256)
def placeholder_svg(colour: str, character: str) -> str:
    """A 16:9 picture: the colour as a soft gradient, a ring, and the character in white."""
    character = escape(character[:1] or "·")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 180" width="320" height="180">'
        '<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="{colour}" stop-opacity=".78"/>'
        f'<stop offset="1" stop-color="{colour}"/></linearGradient></defs>'
        '<rect width="320" height="180" fill="url(#g)"/>'
        '<circle cx="262" cy="34" r="78" fill="#fff" fill-opacity=".10"/>'
        '<circle cx="40" cy="170" r="56" fill="#fff" fill-opacity=".08"/>'
        '<circle cx="160" cy="90" r="44" fill="#fff" fill-opacity=".18"/>'
        '<text x="160" y="90" dy=".35em" text-anchor="middle" font-size="44" font-weight="700" fill="#fff" '
        'font-family="PingFang SC,Microsoft YaHei,Noto Sans CJK SC,WenQuanYi Micro Hei,sans-serif">'
        f"{character}</text></svg>"
    )


@functools.lru_cache(maxsize=256)
def _data_uri(colour: str, character: str) -> str:
    return "data:image/svg+xml;charset=utf-8," + quote(placeholder_svg(colour, character), safe="=:/,.")


def placeholder_data_uri(category, name: str) -> str:
    """The placeholder of ``category`` (its shown ``name``'s first character), as a data: URI."""
    return _data_uri(category_colour(category), (name or "").strip()[:1])


def generate_safely(name: str) -> None:
    """Thumbnails for ``name``, logged (not raised) when the stored file cannot be read."""
    try:
        make_renditions(name)
    except (OSError, UnidentifiedImageError):
        logger.exception("could not make thumbnails of %s", name)


def on_image_saved(sender, instance, **kwargs) -> None:
    """post_save of Product and ProductImage: thumbnails of a new picture, made once; a product
    without a cover takes its first gallery picture as one."""
    from catalog.models import Product, ProductImage

    name = instance.image.name if instance.image else ""
    if not name:
        return
    generate_safely(name)
    if isinstance(instance, ProductImage):
        Product.objects.filter(pk=instance.product_id, image="").update(image=name)
