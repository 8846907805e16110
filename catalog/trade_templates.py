"""Trade templates (游戏卡盟专属模板 and the like): a first-run choice for operators that sets up the
category tree (Chinese and English names), the navigation order, sample home sections and sample
carousel slides (pictures drawn by Pillow) for one trade.

:func:`apply` is idempotent and never deletes or overwrites: a category whose slug exists is left as
it is (its children are still added under it), a section is added only when no section of that kind
(and category) exists, a slide only when none has its title. Offered in admin (the "Apply a trade
template" page of home sections, ``admin:catalog_homesection_template``) and as
``manage.py apply_trade_template <name>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from catalog import home
from catalog.models import Category, HomeSection, HomeSlide


@dataclass(frozen=True)
class Node:
    slug: str
    name: str
    name_en: str
    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class SectionSpec:
    kind: str
    title: str
    title_en: str
    category: str = ""  # slug, for a category block
    limit: int = 8


@dataclass(frozen=True)
class SlideSpec:
    title: str
    title_en: str
    link: str
    colours: tuple[tuple[int, int, int], tuple[int, int, int]]


@dataclass(frozen=True)
class Template:
    name: str
    label: object
    description: object
    tree: tuple[Node, ...]
    sections: tuple[SectionSpec, ...]
    slides: tuple[SlideSpec, ...] = field(default=())


K = HomeSection.Kind
RED, ORANGE = (228, 57, 60), (255, 140, 90)
PURPLE, PINK = (114, 46, 209), (235, 47, 150)
BLUE, CYAN = (22, 119, 255), (19, 194, 194)
GREEN, LIME = (56, 158, 13), (160, 217, 17)

GAME_CARDS = Node(
    "game-cards",
    "游戏点卡",
    "Game cards",
    (
        Node("mobile-games", "手游充值", "Mobile games"),
        Node("pc-game-cards", "端游点卡", "PC game cards"),
        Node("platform-cards", "平台充值卡", "Platform cards"),
        Node("game-items", "游戏道具", "Game items"),
    ),
)
MEMBERSHIPS = Node(
    "memberships",
    "影音会员",
    "Memberships",
    (
        Node("video-vip", "视频会员", "Video"),
        Node("music-vip", "音乐会员", "Music"),
        Node("reading-vip", "阅读会员", "Reading"),
        Node("cloud-vip", "网盘会员", "Cloud storage"),
    ),
)
SOFTWARE = Node(
    "software",
    "软件激活码",
    "Software keys",
    (
        Node("os-keys", "系统激活", "Operating systems"),
        Node("office-keys", "办公软件", "Office"),
        Node("security-keys", "安全杀毒", "Security"),
        Node("design-keys", "设计工具", "Design tools"),
    ),
)
COURSES = Node("courses", "课程兑换码", "Course codes")
PHONE = Node("phone-top-up", "话费流量", "Phone top-up")

TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            "game_cards",
            _("Game cards (游戏卡盟)"),
            _("Game point cards, mobile-game top-ups and platform cards, with a game-card block on the home page."),
            (GAME_CARDS, PHONE),
            (
                SectionSpec(K.BEST_SELLERS, "热销点卡", "Best-selling cards"),
                SectionSpec(K.CATEGORY, "游戏点卡", "Game cards", "game-cards", 12),
                SectionSpec(K.NEW_ARRIVALS, "新品上架", "New arrivals"),
            ),
            (
                SlideSpec("游戏点卡 秒发卡密", "Game cards, codes in seconds", "/c/game-cards/", (RED, ORANGE)),
                SlideSpec("手游充值 低至九五折", "Mobile top-ups from 5% off", "/c/mobile-games/", (PURPLE, PINK)),
            ),
        ),
        Template(
            "memberships",
            _("Memberships"),
            _("Video, music, reading and cloud-storage memberships."),
            (MEMBERSHIPS,),
            (
                SectionSpec(K.BEST_SELLERS, "热门会员", "Popular memberships"),
                SectionSpec(K.CATEGORY, "视频会员", "Video memberships", "video-vip"),
                SectionSpec(K.CATEGORY, "音乐会员", "Music memberships", "music-vip"),
                SectionSpec(K.NEW_ARRIVALS, "新品上架", "New arrivals"),
            ),
            (SlideSpec("影音会员 一站开通", "All your memberships in one place", "/c/memberships/", (PURPLE, PINK)),),
        ),
        Template(
            "software_keys",
            _("Software keys"),
            _("Activation keys for operating systems, office, security and design software."),
            (SOFTWARE,),
            (
                SectionSpec(K.BEST_SELLERS, "热销激活码", "Best-selling keys"),
                SectionSpec(K.CATEGORY, "办公软件", "Office software", "office-keys"),
                SectionSpec(K.NEW_ARRIVALS, "新品上架", "New arrivals"),
            ),
            (SlideSpec("正版激活码 即买即用", "Genuine keys, ready at once", "/c/software/", (BLUE, CYAN)),),
        ),
        Template(
            "mixed",
            _("Mixed shop"),
            _("Game cards, memberships, software keys and course codes side by side."),
            (GAME_CARDS, MEMBERSHIPS, SOFTWARE, COURSES),
            (
                SectionSpec(K.FEATURED, "精选推荐", "Featured"),
                SectionSpec(K.BEST_SELLERS, "热销榜", "Best sellers"),
                SectionSpec(K.CATEGORY, "游戏点卡", "Game cards", "game-cards"),
                SectionSpec(K.CATEGORY, "影音会员", "Memberships", "memberships"),
                SectionSpec(K.NEW_ARRIVALS, "新品上架", "New arrivals"),
            ),
            (
                SlideSpec("虚拟商品 自动发货", "Virtual goods, delivered automatically", "/", (RED, ORANGE)),
                SlideSpec("影音会员 一站开通", "All your memberships in one place", "/c/memberships/", (PURPLE, PINK)),
                SlideSpec("正版激活码 即买即用", "Genuine keys, ready at once", "/c/software/", (GREEN, LIME)),
            ),
        ),
    )
}


@dataclass
class Applied:
    categories: int = 0
    sections: int = 0
    slides: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.categories or self.sections or self.slides)


def _plant(nodes, parent: Category | None, order_base: int, applied: Applied) -> None:
    for index, node in enumerate(nodes):
        category = Category.objects.filter(slug=node.slug).first()
        if category is None:
            category = Category.objects.create(
                slug=node.slug, name=node.name, name_en=node.name_en, parent=parent, sort_order=order_base + index
            )
            applied.categories += 1
        _plant(node.children, category, 0, applied)


@transaction.atomic
def apply(name: str, *, with_slides: bool = True) -> Applied:
    """Create what the template ``name`` adds and is missing (see the module's docstring)."""
    template = TEMPLATES[name]
    applied = Applied()
    # Navigation order: after the categories that exist, in the template's order.
    last = Category.objects.filter(parent=None).order_by("-sort_order").values_list("sort_order", flat=True).first()
    _plant(template.tree, None, 0 if last is None else last + 1, applied)
    next_order = (HomeSection.objects.order_by("-sort_order").values_list("sort_order", flat=True).first() or 0) + 10
    for spec in template.sections:
        category = Category.objects.filter(slug=spec.category).first() if spec.category else None
        if HomeSection.objects.filter(kind=spec.kind, category=category).exists():
            continue
        HomeSection.objects.create(
            kind=spec.kind, title=spec.title, title_en=spec.title_en, category=category, limit=spec.limit,
            sort_order=next_order,
        )  # fmt: skip
        next_order += 10
        applied.sections += 1
    if with_slides:
        order = (HomeSlide.objects.order_by("-sort_order").values_list("sort_order", flat=True).first() or 0) + 10
        for spec in template.slides:
            if HomeSlide.objects.filter(title=spec.title).exists():
                continue
            picture = home.placeholder_slide(title=spec.title, subtitle=spec.title_en, colours=spec.colours)
            slide = HomeSlide(title=spec.title, title_en=spec.title_en, link_url=spec.link, sort_order=order)
            slide.image.save(picture.large.name, picture.large, save=False)
            slide.image_small.save(picture.small.name, picture.small, save=False)
            slide.save()
            order += 10
            applied.slides += 1
    home.forget()
    return applied
