"""Uploaded pictures: the one check and the one JPEG fit that the campaign banners (marketing), the
home page's slides and the shop's logo and icons (catalog) share.

:func:`open_upload` reads the upload once, refuses with a translated ``ValidationError`` what is not a
JPEG/PNG/WebP/GIF picture, is too large (bytes or pixels: a decompression bomb is refused from its
header, before it is decoded) or too small, and returns the first frame turned upright with the raw
bytes (whose digest names the re-encoded files). Product pictures (catalog/images.py) keep their own
WebP pipeline."""

from __future__ import annotations

import io

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
MAX_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000


def open_upload(
    upload,
    *,
    min_size: tuple[int, int],
    too_small: str,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    too_large: str = "",
) -> tuple[Image.Image, bytes]:
    """The upload's first frame, upright, and its bytes; ``ValidationError`` saying why not.
    ``too_small`` is the message for a picture under ``min_size`` (``%(width)s``, ``%(height)s``,
    ``%(min_w)s``, ``%(min_h)s``); ``too_large`` the one over ``max_bytes`` (``%(size)s`` MB)."""
    if upload.size is not None and upload.size > max_bytes:
        message = too_large or _("The picture is too large: at most %(size)s MB.")
        raise ValidationError(message % {"size": max_bytes // (1024 * 1024)}, code="too_large")
    upload.seek(0)
    data = upload.read()
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
            width, height = probe.size
            probe.verify()  # a truncated or corrupt file stops here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(
            _("This file is not an image. Upload a JPEG, PNG, WebP or GIF picture."), code="not_an_image"
        ) from exc
    if kind not in FORMATS:
        raise ValidationError(
            _("%(kind)s images are not accepted. Upload a JPEG, PNG, WebP or GIF picture.") % {"kind": kind},
            code="format",
        )
    if width * height > max_pixels:
        raise ValidationError(_("The picture has too many pixels."), code="too_many_pixels")
    if width < min_size[0] or height < min_size[1]:
        raise ValidationError(
            too_small % {"width": width, "height": height, "min_w": min_size[0], "min_h": min_size[1]},
            code="too_small",
        )
    try:
        with Image.open(io.BytesIO(data)) as source:
            source.seek(0)  # an animated GIF or WebP: its first frame
            return ImageOps.exif_transpose(source), data
    except (OSError, ValueError) as exc:
        raise ValidationError(_("This picture could not be read. Upload another one."), code="unreadable") from exc


def fit_jpeg(image: Image.Image, size: tuple[int, int], name: str) -> ContentFile:
    """``image`` cropped to ``size``'s proportions around its centre, scaled to it, as a JPEG file."""
    fitted = ImageOps.fit(image, size, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    out = io.BytesIO()
    fitted.save(out, format="JPEG", quality=85, optimize=True, progressive=True)
    return ContentFile(out.getvalue(), name=name)
