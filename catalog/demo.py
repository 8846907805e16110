"""Demo data for the embedded run and for tests: two merchants, categories, products, SKUs, codes.

``seed_demo`` is idempotent: every row is found by a natural key (slug, e-mail, label) and
updated in place, and codes are only added to a SKU that has none, so running it twice leaves the
same shop. Demo codes are derived from the SKU (``DEMO-…``), never real.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction

from accounts.models import LoyaltySettings, MemberLevel, Merchant, User
from accounts.roles import add_merchant_staff
from catalog import codes, demo_images, images, services
from catalog.models import Category, Product, Sku, Tag

CATEGORIES = [
    # slug, name, English name, colour (pictures and placeholders)
    ("game-cards", "游戏点卡", "Game cards", "#3d5a80"),
    ("memberships", "影音会员", "Memberships", "#2a9d8f"),
    ("software", "软件激活码", "Software keys", "#7b2cbf"),
    ("courses", "课程兑换码", "Course codes", "#e9a23b"),
]

# Tags (分类标签): slug, name, English name; and which demo products carry them.
TAGS = [
    ("instant", "秒发", "Instant"),
    ("hot", "热销", "Best seller"),
    ("official", "官方正品", "Official"),
    ("gift", "适合送礼", "Gift idea"),
]
PRODUCT_TAGS = {
    "steam-wallet": ["instant", "hot", "official"],
    "netease-points": ["instant", "hot"],
    "qq-music-vip": ["instant", "gift"],
    "iqiyi-vip": ["instant"],
    "office-key": ["official"],
    "python-course": ["gift"],
    "honor-of-kings": ["instant", "hot"],
}

# English denominations (the Chinese label is the key); products without English stay Chinese.
SKU_LABELS_EN = {
    "1个月": "1 month", "3个月": "3 months", "12个月": "12 months", "30天": "30 days", "90天": "90 days",
    "永久授权": "Lifetime licence", "标准版": "Standard", "进阶版": "Advanced", "60点券": "60 vouchers",
    "300点券": "300 vouchers",
}  # fmt: skip


def sku_label_en(label: str) -> str:
    if label.endswith("元") and label[:-1].isdigit():
        return f"¥{label[:-1]}"
    return SKU_LABELS_EN.get(label, label)


# Products shown with a picture (the others show their category's placeholder).
DEMO_IMAGES = {"steam-wallet", "netease-points", "qq-music-vip", "office-key", "honor-of-kings"}

PRODUCTS = [
    # slug, category, title, English title, featured, [(label, face value fen, price fen)]
    (
        "steam-wallet",
        "game-cards",
        "Steam 钱包充值卡",
        "Steam Wallet card",
        True,
        [("50元", 5000, 4850), ("100元", 10000, 9650), ("200元", 20000, 19200)],
    ),
    (
        "netease-points",
        "game-cards",
        "网易一卡通点卡",
        "NetEase points card",
        True,
        [("30元", 3000, 2910), ("50元", 5000, 4850), ("100元", 10000, 9700)],
    ),
    (
        "qq-music-vip",
        "memberships",
        "QQ音乐豪华绿钻",
        "QQ Music VIP",
        True,
        [("1个月", 1500, 1380), ("3个月", 4500, 3980), ("12个月", 18000, 14800)],
    ),
    (
        "iqiyi-vip",
        "memberships",
        "爱奇艺黄金会员",
        "iQIYI Gold VIP",
        False,
        [("30天", 3000, 1990), ("90天", 6800, 5800)],
    ),
    (
        "office-key",
        "software",
        "Office 家庭与学生版激活码",
        "Office Home & Student key",
        False,
        [("永久授权", 74800, 39900)],
    ),
    (
        "python-course",
        "courses",
        "Python 入门课程兑换码",
        "Intro to Python course code",
        False,
        [("标准版", 19900, 9900), ("进阶版", 39900, 19900)],
    ),
]

# Second merchant, to show that merchant staff see only their own goods in admin.
OTHER_MERCHANT_PRODUCTS = [
    ("honor-of-kings", "game-cards", "王者荣耀点券", "Honor of Kings vouchers", False,
     [("60点券", 600, 580), ("300点券", 3000, 2900)]),
]  # fmt: skip

# Codes per SKU; a few SKUs are seeded low or sold out so the storefront shows every state.
DEMO_STOCK = 30
DEMO_STOCK_OVERRIDES = {("iqiyi-vip", "90天"): 3, ("office-key", "永久授权"): 0}

DESCRIPTION = "购买后卡密显示在订单页并发送到您的邮箱。\n请在有效期内使用，虚拟商品售出后非质量问题不退换。"
DESCRIPTION_EN = (
    "After payment the codes appear on the order page and are e-mailed to you.\n"
    "Use them before they expire; digital goods are not returnable once sold unless faulty."
)
# One product keeps Chinese-only texts, so the English site shows the marked fallback.
CHINESE_ONLY = {"python-course"}

# The demo shop's back-office sign-ins (DEBUG only), with the role each one shows.
DEMO_SIGN_INS = [
    # e-mail, password, role
    ("admin@kameng.local", "kameng-admin", "operator: platform staff, every merchant, refunds, settlements"),
    ("merchant@kameng.local", "kameng-merchant", "merchant staff of 卡盟示例商户: only its goods and orders"),
    ("other-merchant@kameng.local", "kameng-merchant", "merchant staff of 星辰游戏, the second merchant"),
]
DEMO_PASSWORDS = {email: password for email, password, _role in DEMO_SIGN_INS}


@dataclass
class DemoShop:
    merchant: Merchant
    other_merchant: Merchant
    categories: dict[str, Category]
    products: dict[str, Product]


def demo_code(sku: Sku, number: int) -> codes.Secret:
    digest = hashlib.sha256(f"{sku.product.slug}/{sku.label}/{number}".encode()).hexdigest().upper()
    return codes.Secret(code=f"DEMO-{digest[:4]}-{digest[4:8]}-{digest[8:12]}", password=digest[12:18])


def _staff_user(email: str, nickname: str, merchant: Merchant) -> None:
    user, created = User.objects.get_or_create(email=email, defaults={"nickname": nickname})
    if created:
        user.set_password(DEMO_PASSWORDS[email])
        user.save(update_fields=["password"])
    add_merchant_staff(merchant=merchant, user=user)


# Member levels: (threshold in fen of paid spend, name, English name, badge colour, % off).
DEMO_LEVELS = [
    (0, "普通会员", "Member", "#8c8c8c", 0),
    (20000, "白银会员", "Silver", "#7d8fa3", 2),
    (100000, "黄金会员", "Gold", "#c9a227", 5),
    (500000, "钻石会员", "Diamond", "#5b8ff9", 8),
]


def seed_levels() -> list[MemberLevel]:
    """The demo member levels and the points settings' row (idempotent; operators change both in admin)."""
    LoyaltySettings.load()
    return [
        MemberLevel.objects.update_or_create(
            threshold_fen=threshold,
            defaults={"name": name, "name_en": name_en, "colour": colour, "discount_percent": percent},
        )[0]
        for threshold, name, name_en, colour, percent in DEMO_LEVELS
    ]


@transaction.atomic
def seed_demo(
    *, with_users: bool = True, with_codes: bool = True, with_levels: bool = True, with_images: bool = False
) -> DemoShop:
    """The demo shop; ``with_images`` draws product pictures (``seed_demo`` the command does; tests
    that do not look at pictures skip the drawing)."""
    merchant, _ = Merchant.objects.update_or_create(
        slug="demo-cards",
        defaults={"name": "卡盟示例商户", "contact_email": "merchant@kameng.local", "contact_name": "小卡"},
    )
    other_merchant, _ = Merchant.objects.update_or_create(
        slug="star-games", defaults={"name": "星辰游戏", "contact_email": "other-merchant@kameng.local"}
    )
    if with_users:
        admin, created = User.objects.get_or_create(
            email="admin@kameng.local", defaults={"is_staff": True, "is_superuser": True, "nickname": "运营"}
        )
        if created:
            admin.set_password(DEMO_PASSWORDS[admin.email])
            admin.save(update_fields=["password"])
        _staff_user("merchant@kameng.local", "示例商户", merchant)
        _staff_user("other-merchant@kameng.local", "星辰游戏", other_merchant)

    categories = {}
    for order, (slug, name, name_en, colour) in enumerate(CATEGORIES):
        categories[slug], _ = Category.objects.update_or_create(
            slug=slug,
            defaults={"name": name, "name_en": name_en, "colour": colour, "sort_order": order, "is_active": True},
        )
    tags = {
        slug: Tag.objects.update_or_create(slug=slug, defaults={"name": name, "name_en": name_en, "sort_order": n})[0]
        for n, (slug, name, name_en) in enumerate(TAGS)
    }

    products = {}
    catalogue = [(merchant, row) for row in PRODUCTS] + [(other_merchant, row) for row in OTHER_MERCHANT_PRODUCTS]
    for order, (owner, (slug, category, title, title_en, featured, skus)) in enumerate(catalogue):
        product, _ = Product.objects.update_or_create(
            slug=slug,
            defaults={
                "merchant": owner,
                "category": categories[category],
                "title": title,
                "title_en": title_en,
                "summary": f"{title}，付款后秒发卡密。",
                "summary_en": "" if slug in CHINESE_ONLY else f"{title_en}: codes delivered seconds after payment.",
                "description": DESCRIPTION,
                "description_en": "" if slug in CHINESE_ONLY else DESCRIPTION_EN,
                "status": Product.Status.LISTED,
                "is_featured": featured,
                "sort_order": order,
            },
        )
        for sku_order, (label, face_value_fen, price_fen) in enumerate(skus):
            sku, _ = Sku.objects.update_or_create(
                product=product,
                label=label,
                defaults={
                    "face_value_fen": face_value_fen,
                    "price_fen": price_fen,
                    "sort_order": sku_order,
                    "label_en": "" if slug in CHINESE_ONLY else sku_label_en(label),
                },
            )
            if with_codes and not sku.codes.exists():
                count = DEMO_STOCK_OVERRIDES.get((slug, label), DEMO_STOCK)
                services.add_codes(sku=sku, secrets=[demo_code(sku, n) for n in range(count)])
        product.tags.set([tags[tag] for tag in PRODUCT_TAGS.get(slug, [])])
        if with_images and slug in DEMO_IMAGES and not product.image:
            picture = images.clean_upload(
                demo_images.draw(title=title_en, subtitle=title, colour=categories[category].colour, slug=slug)
            )
            product.image.save(f"{slug}.webp", picture, save=True)  # thumbnails: images.on_image_saved
        products[slug] = product
    if with_levels:
        seed_levels()

    from catalog.signals import demo_seeded

    demo_seeded.send(sender=None)  # apps above the catalog add their demo rows (idempotent)
    return DemoShop(merchant=merchant, other_merchant=other_merchant, categories=categories, products=products)
