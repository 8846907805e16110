"""Pictures of the demo shop's products, drawn with Pillow: a card in the category's colour with
the product's name, so the demo storefront looks like a shop, not a wall of grey boxes."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1280, 720
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def _font(paths: list[str], size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in paths:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#") or "3d5a80"
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def draw(*, title: str, subtitle: str, colour: str, slug: str) -> ContentFile:
    seed = hashlib.sha256(slug.encode()).digest()
    # Products of one category share its colour, each a little shifted so the cards can be told apart.
    base = _mix(_rgb(colour), ((seed[2] * 7) % 256, (seed[3] * 5) % 256, (seed[4] * 3) % 256), 0.22)
    light, dark = _mix(base, (255, 255, 255), 0.25), _mix(base, (0, 0, 0), 0.35)
    image = Image.new("RGB", (WIDTH, HEIGHT))
    pen = ImageDraw.Draw(image)
    for y in range(HEIGHT):  # diagonal-ish gradient, light top left to dark bottom right
        pen.line([(0, y), (WIDTH, y)], fill=_mix(light, dark, y / HEIGHT))
    overlay = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    shapes = ImageDraw.Draw(overlay)
    shapes.ellipse([WIDTH - 520 + seed[0] % 80, -260, WIDTH + 200, 420], fill=(255, 255, 255, 34))
    shapes.ellipse([-220, HEIGHT - 260, 260 + seed[1] % 80, HEIGHT + 220], fill=(255, 255, 255, 22))
    # A "card" with rounded corners, as on a gift card.
    shapes.rounded_rectangle([96, 150, 96 + 420, 150 + 264], radius=28, fill=(255, 255, 255, 46))
    shapes.rounded_rectangle([128, 190, 128 + 96, 190 + 70], radius=12, fill=(255, 255, 255, 120))
    image = Image.alpha_composite(image.convert("RGBA"), overlay)
    pen = ImageDraw.Draw(image)
    cjk = _font(list(settings.CAMPAIGN_SHARE_FONTS), 52)
    latin = _font([LATIN_FONT], 64)
    pen.text((96, 470), title, font=latin, fill=(255, 255, 255))
    pen.text((98, 560), subtitle, font=cjk, fill=(255, 255, 255, 220))
    out = io.BytesIO()
    image.convert("RGB").save(out, "PNG")
    return ContentFile(out.getvalue(), name=f"{slug}.png")
