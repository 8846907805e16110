"""Demo data for the embedded run and for tests: one merchant, categories, products, SKUs.

``seed_demo`` is idempotent: every row is found by a natural key (slug, e-mail, label) and
updated in place, so running it twice leaves the same shop. Later issues extend it with card
codes, a coupon, a time-limited special and member levels.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Merchant, User
from catalog.models import Category, Product, Sku

CATEGORIES = [
    # slug, name, English name
    ("game-cards", "游戏点卡", "Game cards"),
    ("memberships", "影音会员", "Memberships"),
    ("software", "软件激活码", "Software keys"),
    ("courses", "课程兑换码", "Course codes"),
]

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

DESCRIPTION = "购买后卡密显示在订单页并发送到您的邮箱。\n请在有效期内使用，虚拟商品售出后非质量问题不退换。"

DEMO_PASSWORDS = {"admin@kameng.local": "kameng-admin", "merchant@kameng.local": "kameng-merchant"}


@dataclass
class DemoShop:
    merchant: Merchant
    categories: dict[str, Category]
    products: dict[str, Product]


@transaction.atomic
def seed_demo(*, with_users: bool = True) -> DemoShop:
    merchant, _ = Merchant.objects.update_or_create(
        slug="demo-cards",
        defaults={"name": "卡盟示例商户", "contact_email": "merchant@kameng.local", "contact_name": "小卡"},
    )
    if with_users:
        admin, created = User.objects.get_or_create(
            email="admin@kameng.local", defaults={"is_staff": True, "is_superuser": True, "nickname": "运营"}
        )
        if created:
            admin.set_password(DEMO_PASSWORDS[admin.email])
            admin.save(update_fields=["password"])
        staff, created = User.objects.get_or_create(
            email="merchant@kameng.local", defaults={"is_staff": True, "nickname": "示例商户"}
        )
        if created:
            staff.set_password(DEMO_PASSWORDS[staff.email])
            staff.save(update_fields=["password"])
        merchant.users.add(staff)

    categories = {}
    for order, (slug, name, name_en) in enumerate(CATEGORIES):
        categories[slug], _ = Category.objects.update_or_create(
            slug=slug, defaults={"name": name, "name_en": name_en, "sort_order": order, "is_active": True}
        )

    products = {}
    for order, (slug, category, title, title_en, featured, skus) in enumerate(PRODUCTS):
        product, _ = Product.objects.update_or_create(
            slug=slug,
            defaults={
                "merchant": merchant,
                "category": categories[category],
                "title": title,
                "title_en": title_en,
                "summary": f"{title}，付款后秒发卡密。",
                "description": DESCRIPTION,
                "status": Product.Status.LISTED,
                "is_featured": featured,
                "sort_order": order,
            },
        )
        for sku_order, (label, face_value_fen, price_fen) in enumerate(skus):
            Sku.objects.update_or_create(
                product=product,
                label=label,
                defaults={"face_value_fen": face_value_fen, "price_fen": price_fen, "sort_order": sku_order},
            )
        products[slug] = product
    return DemoShop(merchant=merchant, categories=categories, products=products)
