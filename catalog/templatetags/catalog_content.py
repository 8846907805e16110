"""Pictures of products in templates: ``{% load catalog_content %}``.

``{% product_image product "card" %}`` shows the product's cover thumbnail (``src`` at 1x,
``srcset`` with the 2x file, ``width``/``height`` so nothing moves while it loads, lazy unless
``eager=True``), or its category's generated placeholder. No query: thumbnail names follow from the
picture's (catalog/images.py) and the category is the one the page already selected.
"""

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from catalog import images
from kameng.templatetags.kameng import tr

register = template.Library()


@register.simple_tag
def product_image(product, size: str = "card", css_class: str = "card-image", alt: str = "", eager: bool = False):
    width, height = images.SIZES[size]
    loading = mark_safe('fetchpriority="high"' if eager else 'loading="lazy"')  # noqa: S308 (constants)
    if product.image:
        src, srcset, width, height = images.rendition_urls(product.image.name, size)
        return format_html(
            '<img class="{}" src="{}" srcset="{}" width="{}" height="{}" alt="{}" {} decoding="async">',
            css_class, src, srcset, width, height, alt, loading,
        )  # fmt: skip
    category = product.category
    return format_html(
        '<img class="{} placeholder" src="{}" width="{}" height="{}" alt="{}" {}>',
        css_class, images.placeholder_data_uri(category, tr(category, "name")), width, height, alt, loading,
    )  # fmt: skip


@register.simple_tag
def gallery_image(image, size: str = "thumb"):
    """One gallery picture (a ProductImage): its thumbnail, linking to the full re-encoded picture."""
    src, srcset, width, height = images.rendition_urls(image.image.name, size)
    return format_html(
        '<a href="{}" class="gallery-item"><img src="{}" srcset="{}" width="{}" height="{}" alt="{}" '
        'loading="lazy" decoding="async"></a>',
        image.image.url, src, srcset, width, height, image.alt,
    )  # fmt: skip
