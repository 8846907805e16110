"""A member level's prices of SKUs: the explicit per-SKU price operators set (:class:`LevelPrice`)
or the level's percentage off (``accounts.levels.level_unit_price``). Shared by the product page
(the level price shown to the member, the list price struck through) and the ``member_level``
pricing rule (orders/loyalty.py), so both always say the same price."""

from __future__ import annotations

from accounts import levels
from accounts.models import LoyaltyAccount, MemberLevel
from catalog.models import LevelPrice


def buyer_level(user) -> MemberLevel | None:
    """The signed-in buyer's level (one query; None for guests and buyers without one)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    account = LoyaltyAccount.objects.select_related("level").filter(user=user).first()
    return account.level if account else None


def prices_for(*, level: MemberLevel | None, skus) -> dict[int, int]:
    """The unit price of each SKU (by id) for ``level``, only where it is below the list price (one
    query for the explicit prices)."""
    if level is None:
        return {}
    skus = list(skus)
    explicit = dict(
        LevelPrice.objects.filter(level=level, sku_id__in=[sku.pk for sku in skus]).values_list("sku_id", "price_fen")
    )
    prices = {}
    for sku in skus:
        unit = levels.level_unit_price(
            price_fen=sku.price_fen, discount_percent=level.discount_percent, explicit_fen=explicit.get(sku.pk),
            cost_fen=sku.cost_fen,
        )  # fmt: skip
        if unit < sku.price_fen:
            prices[sku.pk] = unit
    return prices
