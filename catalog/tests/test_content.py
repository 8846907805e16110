"""Catalog content (issue 15): product pictures (checked, re-encoded, thumbnails, placeholders),
English content with a marked Chinese fallback, and tags."""

from __future__ import annotations

import io
import re
import struct
import zlib

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation
from PIL import Image

from accounts.models import User
from accounts.roles import add_merchant_staff
from catalog import images
from catalog.models import BuyerField, Product, ProductImage, Sku

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def jpeg_with_metadata(size=(1600, 1200), colour=(200, 40, 40)) -> bytes:
    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "Editor 1.0"  # Software
    exif[0x8825] = {2: (39.0, 54.0, 0.0)}  # GPSInfo: latitude
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"hidden comment")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width``×``height`` pixels (a decompression bomb's header) and holds none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def upload(data: bytes, name="photo.jpg", content_type="image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


# --- Upload checks and re-encoding ----------------------------------------------------------------
def test_a_picture_is_re_encoded_as_webp_without_its_metadata():
    original = jpeg_with_metadata()
    assert b"SecretCam" in original
    cleaned = images.clean_upload(upload(original))
    data = cleaned.read()
    assert cleaned.name == "photo.webp"
    assert b"SecretCam" not in data and b"hidden comment" not in data and b"Editor 1.0" not in data
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "WEBP"
    assert picture.size == (1600, 1200)
    assert not picture.getexif()
    assert "icc_profile" not in picture.info and "xmp" not in picture.info


def test_a_huge_picture_is_scaled_down_and_a_rotated_one_turned_upright():
    image = Image.new("RGB", (4000, 3000), (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    picture = Image.open(images.clean_upload(upload(out.getvalue())))
    assert picture.size == (images.MAX_SIDE * 3 // 4, images.MAX_SIDE)  # portrait now, within the limit


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        (b"<?php system($_GET['c']); ?>", "shell.jpg", "not_image"),
        (b"%PDF-1.4 not a picture", "doc.png", "not_image"),
        (jpeg_with_metadata()[:400], "truncated.jpg", "not_image"),
        (png_header_only(10_000, 5_000), "big.png", "too_many_pixels"),  # 50 Mpx > 40 Mpx
        (png_header_only(30_000, 30_000), "bomb.png", "too_many_pixels"),  # beyond Pillow's own limit
    ],
)
def test_what_is_not_an_acceptable_picture_is_refused_with_a_reason(data, name, code):
    with pytest.raises(ValidationError) as refused:
        images.clean_upload(upload(data, name=name))
    assert refused.value.code == code


def test_other_picture_formats_are_refused():
    out = io.BytesIO()
    Image.new("RGB", (32, 32)).save(out, "BMP")
    with pytest.raises(ValidationError) as refused:
        images.clean_upload(upload(out.getvalue(), name="x.bmp"))
    assert refused.value.code == "format"
    assert "BMP" in str(refused.value.messages)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read():
    big = SimpleUploadedFile("big.jpg", b"\xff\xd8" + b"\0" * (images.MAX_UPLOAD_BYTES + 1), content_type="image/jpeg")
    with pytest.raises(ValidationError) as refused:
        images.clean_upload(big)
    assert refused.value.code == "too_large"


# --- Thumbnails -----------------------------------------------------------------------------------
def test_saving_a_picture_writes_the_thumbnails_the_pages_use(demo_shop):
    product = demo_shop.products["iqiyi-vip"]
    product.image.save("cover.webp", images.clean_upload(upload(jpeg_with_metadata())), save=True)
    for width in images.RENDITION_WIDTHS:
        name = images.rendition_name(product.image.name, width)
        with default_storage.open(name) as handle:
            thumb = Image.open(handle)
            assert (thumb.format, thumb.size) == ("WEBP", (width, width * 9 // 16))
    # The sizes the card and the product page ask for are among them, at 1x and 2x.
    for width, _height in images.SIZES.values():
        assert width in images.RENDITION_WIDTHS and width * 2 in images.RENDITION_WIDTHS


def test_card_and_product_page_show_thumbnails_lazily_with_their_size(client, demo_shop):
    product = demo_shop.products["iqiyi-vip"]
    product.image.save("cover.webp", images.clean_upload(upload(jpeg_with_metadata())), save=True)
    stem = product.image.name.rsplit(".", 1)[0].rsplit("/", 1)[1]
    card = re.search(r'<img class="card-image"[^>]*>', client.get("/c/memberships/").content.decode()).group(0)
    assert f"thumbs/{stem}-320.webp 1x" in card and f"thumbs/{stem}-640.webp 2x" in card
    assert 'width="320" height="180"' in card and 'loading="lazy"' in card
    head = re.search(r'<img class="product-image"[^>]*>', client.get("/p/iqiyi-vip/").content.decode()).group(0)
    assert f"thumbs/{stem}-640.webp 1x" in head and f"thumbs/{stem}-1280.webp 2x" in head
    assert 'width="640" height="360"' in head and 'alt="爱奇艺黄金会员"' in head


def test_a_gallery_picture_becomes_the_cover_of_a_product_without_one(demo_shop):
    product = demo_shop.products["iqiyi-vip"]
    picture = images.clean_upload(upload(jpeg_with_metadata(), name="shot.jpg"))
    gallery = ProductImage(product=product, alt="截图")
    gallery.image.save("shot.webp", picture, save=True)
    product.refresh_from_db()
    assert product.image.name == gallery.image.name
    assert default_storage.exists(images.rendition_name(gallery.image.name, 160))


# --- Placeholders ---------------------------------------------------------------------------------
def test_products_without_a_picture_show_their_category_placeholder(client, demo_shop):
    html = client.get("/").content.decode()
    placeholders = re.findall(r'<img class="card-image placeholder" src="(data:image/svg\+xml[^"]+)"', html)
    assert placeholders, "cards without a picture show a generated placeholder"
    game = images.placeholder_data_uri(demo_shop.categories["game-cards"], "游戏点卡")
    course = images.placeholder_data_uri(demo_shop.categories["courses"], "课程兑换码")
    assert game != course
    assert "%233d5a80" in game  # the category's colour (#3d5a80, encoded)
    assert "%E6%B8%B8" in game  # 游, the category's first character
    assert course in html  # Python course has no picture in the demo
    assert images.placeholder_data_uri(demo_shop.categories["game-cards"], "游戏点卡") is game  # made once


def test_a_category_without_a_colour_gets_a_stable_one_from_the_palette(demo_shop):
    category = demo_shop.categories["software"]
    category.colour = ""
    assert images.category_colour(category) in images.PALETTE
    assert images.category_colour(category) == images.category_colour(category)


# --- English content ------------------------------------------------------------------------------
def english(client):
    client.cookies["django_language"] = "en"
    return client


def test_product_page_in_english_shows_the_english_texts(client, demo_shop):
    html = english(client).get("/p/qq-music-vip/").content.decode()
    assert "QQ Music VIP: codes delivered seconds after payment." in html
    assert "3 months" in html and "3个月" not in html
    assert "e-mailed to you" in html and "购买后卡密" not in html
    assert 'lang="zh-Hans"' not in html.split("<main", 1)[-1]


def test_missing_english_falls_back_to_chinese_marked_as_chinese(client, demo_shop):
    html = english(client).get("/p/python-course/").content.decode()
    assert '<span lang="zh-Hans" class="untranslated">标准版</span>' in html
    assert '<span lang="zh-Hans" class="untranslated">Python 入门课程兑换码，付款后秒发卡密。</span>' in html
    assert re.search(r'<section class="description" lang="zh-Hans">', html)
    assert "This description is available in Chinese only." in html


def test_the_chinese_site_shows_chinese_texts_unmarked(client, demo_shop):
    html = client.get("/p/python-course/").content.decode()
    assert "标准版" in html and "untranslated" not in html


def test_buyer_field_labels_and_hints_follow_the_language(demo_shop):
    from orders.forms import CheckoutForm

    product = demo_shop.products["qq-music-vip"]
    sku = product.skus.first()
    translated = BuyerField.objects.create(
        product=product, key="qq", label="QQ号", label_en="QQ number",
        help_text="充值到此QQ", help_text_en="Top-up goes here",
    )  # fmt: skip
    only_chinese = BuyerField.objects.create(product=product, key="area", label="大区", help_text="如：电信一区")
    fields = [(sku.pk, translated), (sku.pk, only_chinese)]
    with translation.override("en"):
        form = CheckoutForm(buyer_fields=fields)
        assert form.fields[CheckoutForm.field_name(sku.pk, translated)].label == "QQ number"
        assert form.fields[CheckoutForm.field_name(sku.pk, translated)].help_text == "Top-up goes here"
        label = str(form.fields[CheckoutForm.field_name(sku.pk, only_chinese)].label)
        assert label == '<span lang="zh-Hans" class="untranslated">大区</span>'
    with translation.override("zh-hans"):
        form = CheckoutForm(buyer_fields=fields)
        assert form.fields[CheckoutForm.field_name(sku.pk, translated)].label == "QQ号"


def test_order_items_keep_the_english_texts_for_the_order_page(client, demo_shop, user):
    from orders.tests.conftest import place

    sku = Sku.objects.get(product__slug="qq-music-vip", label="3个月")
    order = place(sku, 1, buyer=user, email=user.email).order
    item = order.items.get()
    assert (item.product_title_en, item.sku_label_en) == ("QQ Music VIP", "3 months")
    client.force_login(user)
    assert "QQ Music VIP · 3 months" in english(client).get(order.get_absolute_url()).content.decode()
    client.cookies["django_language"] = "zh-hans"
    assert "QQ音乐豪华绿钻 · 3个月" in client.get(order.get_absolute_url()).content.decode()


def test_cart_shows_english_denominations_and_marks_chinese_ones(client, demo_shop):
    english(client)
    for label in ("3个月", "标准版"):
        sku = Sku.objects.get(label=label)
        client.post("/orders/cart/add/", {"sku": sku.pk, "quantity": 1})
    html = client.get("/orders/cart/").content.decode()
    assert "3 months" in html
    assert '<span lang="zh-Hans" class="untranslated">标准版</span>' in html


# --- Tags -----------------------------------------------------------------------------------------
def test_tags_show_as_chips_and_filter_a_category(client, demo_shop):
    page = client.get("/c/game-cards/").content.decode()
    assert '<nav class="tag-chips tag-filter"' in page
    for name in ("秒发", "热销", "官方正品"):
        assert name in page
    assert "适合送礼" not in page  # no game card carries it
    filtered = client.get("/c/game-cards/?tag=official").content.decode()
    assert "Steam 钱包充值卡" in filtered and "网易一卡通点卡" not in filtered
    assert re.search(r'href="\?tag=official" aria-current="page"', filtered)
    unknown = client.get("/c/game-cards/?tag=nope").content.decode()
    assert "网易一卡通点卡" in unknown  # an unknown tag filters nothing


def test_tag_page_lists_the_tagged_products(client, demo_shop):
    html = english(client).get("/tags/gift/").content.decode()
    assert "Gift idea" in html and "QQ Music VIP" in html and "Intro to Python course code" in html
    assert "Steam Wallet card" not in html
    assert client.get("/tags/nope/").status_code == 404
    product = client.get("/p/steam-wallet/").content.decode()
    assert 'href="/tags/official/"' in product


def test_merchants_tag_their_products_with_existing_tags_but_only_operators_manage_tags(client, demo_shop):
    staff = User.objects.create_user(email="m@example.com", password="pw-123456-x", is_staff=True)
    add_merchant_staff(merchant=demo_shop.merchant, user=staff)
    client.force_login(staff)
    assert client.get("/admin/catalog/tag/").status_code == 403
    assert client.get("/admin/catalog/tag/add/").status_code == 403
    product = demo_shop.products["iqiyi-vip"]
    form = client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()
    assert 'name="tags"' in form and "适合送礼" in form
    operator = User.objects.create_superuser(email="op@example.com", password="pw-123456-x")
    client.force_login(operator)
    assert client.get("/admin/catalog/tag/").status_code == 200


# --- Admin upload and access ----------------------------------------------------------------------
def product_form(product: Product, **extra) -> dict:
    data = {
        "category": product.category_id, "title": product.title, "title_en": product.title_en, "slug": product.slug,
        "summary": "", "summary_en": "", "description": "", "description_en": "", "delivery_mode": "automatic",
        "min_per_order": 1, "max_per_order": 10, "max_per_buyer": "", "sort_order": 0,
    }  # fmt: skip
    for prefix in ("skus", "images", "buyer_fields"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000})
    data.update(extra)
    return data


@pytest.fixture
def merchant_staff(demo_shop):
    staff = User.objects.create_user(email="staff@example.com", password="pw-123456-x", is_staff=True)
    add_merchant_staff(merchant=demo_shop.merchant, user=staff)
    return staff


def new_product(merchant, category, slug="bare") -> Product:
    return Product.objects.create(merchant=merchant, category=category, title="新商品", slug=slug)


def test_merchant_uploads_a_gallery_picture_in_admin(client, demo_shop, merchant_staff):
    product = new_product(demo_shop.merchant, demo_shop.categories["software"])
    client.force_login(merchant_staff)
    data = product_form(product, **{"images-TOTAL_FORMS": 1, "images-0-alt": "盒子", "images-0-sort_order": 0,
                                    "images-0-image": upload(jpeg_with_metadata(), name="box.jpg")})  # fmt: skip
    response = client.post(f"/admin/catalog/product/{product.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = ProductImage.objects.get(product=product)
    assert stored.image.name.endswith(".webp")
    with default_storage.open(stored.image.name) as handle:
        assert b"SecretCam" not in handle.read()
    assert default_storage.exists(images.rendition_name(stored.image.name, 320))


def test_admin_refuses_a_file_that_is_not_a_picture_with_the_reason(client, demo_shop, merchant_staff):
    product = new_product(demo_shop.merchant, demo_shop.categories["software"])
    client.force_login(merchant_staff)
    with translation.override("en"):
        data = product_form(product, image=upload(png_header_only(30_000, 30_000), name="bomb.png"))
        response = client.post(f"/admin/catalog/product/{product.pk}/change/", data, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors["image"]
    product.refresh_from_db()
    assert not product.image


def test_a_merchant_cannot_touch_another_merchants_product_pictures(client, demo_shop, merchant_staff):
    theirs = demo_shop.products["honor-of-kings"]  # the other merchant's
    picture = ProductImage(product=theirs, alt="theirs")
    picture.image.save("theirs.webp", images.clean_upload(upload(jpeg_with_metadata())), save=True)
    client.force_login(merchant_staff)
    url = f"/admin/catalog/product/{theirs.pk}/change/"
    assert client.get(url).status_code == 404
    data = product_form(theirs, **{"images-TOTAL_FORMS": 1, "images-INITIAL_FORMS": 1, "images-0-id": picture.pk,
                                   "images-0-product": theirs.pk, "images-0-DELETE": "on"})  # fmt: skip
    assert client.post(url, data).status_code == 404
    assert ProductImage.objects.filter(pk=picture.pk).exists()
    assert client.get("/admin/catalog/productimage/").status_code == 404  # no admin of its own


def test_make_thumbnails_fills_in_missing_ones(demo_shop):
    from django.core.management import call_command

    product = demo_shop.products["iqiyi-vip"]
    product.image.save("cover.webp", images.clean_upload(upload(jpeg_with_metadata())), save=True)
    missing = images.rendition_name(product.image.name, 640)
    default_storage.delete(missing)
    out = io.StringIO()
    call_command("make_thumbnails", stdout=out)
    assert default_storage.exists(missing)
    assert "1 thumbnails written" in out.getvalue()


def test_gallery_shows_when_it_has_more_than_the_cover(client, demo_shop):
    product = demo_shop.products["iqiyi-vip"]
    only = ProductImage(product=product, alt="封面")
    only.image.save("one.webp", images.clean_upload(upload(jpeg_with_metadata())), save=True)
    assert 'class="gallery"' not in client.get("/p/iqiyi-vip/").content.decode()  # it became the cover
    second = ProductImage(product=product, alt="细节", sort_order=1)
    second.image.save("two.webp", images.clean_upload(upload(jpeg_with_metadata(colour=(0, 90, 0)))), save=True)
    html = client.get("/p/iqiyi-vip/").content.decode()
    assert html.count('class="gallery-item"') == 2 and 'alt="细节"' in html
    assert f'href="{second.image.url}"' in html
