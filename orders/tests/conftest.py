import uuid

import pytest

from catalog import codes
from catalog import services as catalog_services
from catalog.models import Product, Sku
from orders import services
from payments import services as payments


@pytest.fixture
def stocked_sku(demo_shop):
    """A fresh SKU of a listed automatic product, with 5 codes."""
    product = demo_shop.products["steam-wallet"]
    sku = Sku.objects.create(product=product, label="测试面额", price_fen=1000, low_stock_threshold=0)
    catalog_services.add_codes(sku=sku, secrets=[codes.Secret(f"T-{i:03d}", password=f"P{i}") for i in range(5)])
    return sku


def make_sku(product: Product, *, codes_count: int, label: str = "并发", price_fen: int = 500) -> Sku:
    product.max_per_order = 100
    product.save(update_fields=["max_per_order"])
    sku = Sku.objects.create(product=product, label=label, price_fen=price_fen, low_stock_threshold=0)
    catalog_services.add_codes(sku=sku, secrets=[codes.Secret(f"{label}-{i:05d}") for i in range(codes_count)])
    return sku


def place(sku: Sku, quantity: int = 1, *, email: str | None = None, key: str | None = None, **kwargs):
    return services.place_order(
        lines=[services.CartLine(sku_id=sku.pk, quantity=quantity)],
        email=email or f"{uuid.uuid4().hex[:8]}@example.com",
        idempotency_key=key or uuid.uuid4().hex,
        **kwargs,
    )


def pay(order, *, amount_fen: int | None = None) -> str:
    payment, _ = payments.start_payment(order=order, provider_name="sandbox")
    return payments.confirm_payment(
        out_trade_no=payment.out_trade_no,
        amount_fen=order.total_fen if amount_fen is None else amount_fen,
        gateway_trade_no=f"G{payment.pk}",
        provider="sandbox",
    )


# -- after-sales, views and admin helpers -----------------------------------------------------------------


def delivered(sku: Sku, quantity: int = 1, **kwargs):
    """A placed and paid order of ``sku``, delivered (Celery is eager; needs committed transactions)."""
    order = place(sku, quantity, **kwargs).order
    pay(order)
    order.refresh_from_db()
    assert order.status == order.Status.DELIVERED
    return order


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), *, exif: dict | None = None) -> bytes:
    """A small real image (optionally with EXIF tags, e.g. {0x010F: "PhoneMaker"})."""
    import io

    from PIL import Image

    image = Image.new("RGB", size, (200, 30, 40))
    buffer = io.BytesIO()
    extra = {}
    if exif:
        tags = Image.Exif()
        for tag, value in exif.items():
            tags[tag] = value
        extra["exif"] = tags.tobytes()
    image.save(buffer, format=fmt, **extra)
    return buffer.getvalue()


@pytest.fixture
def media_root(settings, tmp_path):
    """Uploads land in a throwaway directory."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
