"""Member levels: which level a buyer's paid spend reaches, what a level's price of a SKU is, and the
progress to the next level shown on /me/.

A buyer's paid spend is what they paid for goods minus what was refunded (orders compute it:
``orders/loyalty.py``, which calls :func:`update_spend` with the account row locked whenever an
order is paid or refunded). The level moves up as soon as the spend reaches a higher threshold; it
moves down after refunds only when the operators ticked ``downgrade_on_refund``
(:class:`~accounts.models.LoyaltySettings`) — otherwise a level once reached is kept.

A level's price of a SKU (:func:`level_unit_price`): the explicit per-SKU price operators set
(``catalog.LevelPrice``) when there is one, else the list price less ``discount_percent`` (the
discount rounded down to the fen, so no fraction of a fen is given away), never above the list
price and never below the SKU's cost when it has one (DESIGN: a floor at cost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import get_language

from accounts.models import LoyaltyAccount, LoyaltySettings, MemberLevel, User


def level_name(level: MemberLevel | None) -> str:
    """The level's name in the page's language (the English one when it is filled)."""
    if level is None:
        return ""
    return level.name_en if get_language() == "en" and level.name_en else level.name


def level_for_spend(spend_fen: int, levels: list[MemberLevel]) -> MemberLevel | None:
    """The highest level whose threshold ``spend_fen`` reaches (levels in any order)."""
    reached = [level for level in levels if level.threshold_fen <= spend_fen]
    return max(reached, key=lambda level: level.threshold_fen, default=None)


def level_unit_price(
    *, price_fen: int, discount_percent: int, explicit_fen: int | None = None, cost_fen: int | None = None
) -> int:
    """A level's unit price of a SKU listed at ``price_fen`` (see the module doc)."""
    if explicit_fen is not None:
        price = min(explicit_fen, price_fen)
    elif discount_percent > 0:
        price = price_fen - price_fen * min(discount_percent, 100) // 100
    else:
        return price_fen
    if cost_fen is not None and cost_fen < price_fen:
        price = max(price, cost_fen)
    return max(price, 0)


@dataclass(frozen=True)
class LevelChange:
    before: MemberLevel | None
    after: MemberLevel | None
    spend_fen: int

    @property
    def changed(self) -> bool:
        return (self.before and self.before.pk) != (self.after and self.after.pk)


def update_spend(*, user: User, spend: Callable[[], int]) -> LevelChange:
    """Lock the buyer's account, then read their paid spend (``spend()``, asked only once the lock is
    held, so two payments at once cannot both compute from a stale total) and move the level."""
    with transaction.atomic():
        LoyaltyAccount.objects.get_or_create(user=user)
        account = LoyaltyAccount.objects.select_for_update(of=("self",)).select_related("level").get(user=user)
        spend_fen = max(spend(), 0)
        levels = list(MemberLevel.objects.all())
        reached = level_for_spend(spend_fen, levels)
        current = account.level
        if current is None or (reached is not None and reached.threshold_fen > current.threshold_fen):
            target = reached  # up (or a first level)
        elif reached is None or reached.threshold_fen < current.threshold_fen:
            target = reached if LoyaltySettings.load().downgrade_on_refund else current
        else:
            target = current
        fields: dict[str, object] = {"paid_spend_fen": spend_fen}
        if (target and target.pk) != (current and current.pk):
            fields.update(level=target, level_changed_at=timezone.now())
        LoyaltyAccount.objects.filter(pk=account.pk).update(**fields)
        return LevelChange(before=current, after=target, spend_fen=spend_fen)


@dataclass(frozen=True)
class Progress:
    level: MemberLevel | None
    next_level: MemberLevel | None
    spend_fen: int

    @property
    def missing_fen(self) -> int:
        return max(self.next_level.threshold_fen - self.spend_fen, 0) if self.next_level else 0

    @property
    def percent(self) -> int:
        """How far from the current level's threshold to the next one (100 at the top)."""
        if self.next_level is None:
            return 100
        low = self.level.threshold_fen if self.level else 0
        span = self.next_level.threshold_fen - low
        return max(0, min(100, (self.spend_fen - low) * 100 // span)) if span > 0 else 100


def progress(*, level: MemberLevel | None, spend_fen: int, levels: list[MemberLevel]) -> Progress:
    """The buyer's level (a buyer never ranked yet gets the one their spend reaches: usually the
    operators' entry level at 0) and the next one above it, with what is still missing."""
    if level is None:
        level = level_for_spend(spend_fen, levels)
    floor = level.threshold_fen if level else -1
    next_level = min((c for c in levels if c.threshold_fen > floor), key=lambda c: c.threshold_fen, default=None)
    return Progress(level=level, next_level=next_level, spend_fen=spend_fen)
