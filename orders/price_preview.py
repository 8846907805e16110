"""The operators' price preview per role: what the pricing engine charges for a SKU — for one unit and
for a chosen quantity — to a guest, to a signed-in buyer of each member level, and to an annual member
of each plan on sale, with the breakdown (which rules applied, which were capped, which were passed
over for a better one).

Computed by :func:`orders.pricing.quote` itself with a synthetic buyer context (``as_level``,
``as_membership``; see orders/pricing.py), never by repeating the rules: whatever the engine does at
checkout — level prices, the member discount, flash specials, quantity tiers, 满减, the floors at cost
and at the platform's commission — the preview shows. Left out, because they belong to one person and
not to a role: coupons (a code is typed), the first-order discount (the buyer's history), points (the
buyer's balance) and what a buyer already bought of a flash special (the per-buyer limit counts from
zero, as for someone who has not bought yet).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from accounts.levels import level_name
from accounts.models import MemberLevel
from catalog.models import Sku
from orders import pricing
from orders.models import Membership, MembershipPlan


@dataclass
class Role:
    key: str
    label: str
    context: dict


@dataclass
class RolePrice:
    role: Role
    unit: pricing.Quote  # one unit
    bulk: pricing.Quote  # the chosen quantity
    quantity: int

    @property
    def unit_total_fen(self) -> int:
        return self.unit.total_fen

    @property
    def bulk_total_fen(self) -> int:
        return self.bulk.total_fen

    @property
    def bulk_each_fen(self) -> int:
        """What one unit costs within the chosen quantity (rounded down to the fen)."""
        return self.bulk.total_fen // self.quantity

    @property
    def adjustments(self) -> list[pricing.Adjustment]:
        return self.bulk.adjustments

    @property
    def not_given(self) -> list[pricing.Adjustment]:
        return self.bulk.not_given

    @property
    def passed_over(self) -> list[dict]:
        """The offers left out for a better one, with their rules' names in words."""
        return [
            {**item, "rule_label": rule_label(item["rule"]), "instead_label": rule_label(item["instead"])}
            for item in self.bulk.passed_over
        ]


def rule_label(rule: str) -> str:
    labels = {
        "member_level": _("member-level price"), "annual_membership": _("annual member price"),
        "flash_special": _("flash special"), "quantity_tier": _("quantity tier"), "spend_tiers": _("spend tiers"),
        "first_order": _("first-order discount"), "coupon": _("coupon"), "points": _("points"),
    }  # fmt: skip
    return str(labels.get(rule, rule))


def roles() -> list[Role]:
    """Guest, each member level (lowest threshold first), each membership plan on sale."""
    found = [Role("guest", _("Guest, or signed in without a level"), {"buyer": None, "as_level": None})]
    for level in MemberLevel.objects.order_by("threshold_fen", "pk"):
        found.append(Role(f"level:{level.pk}", _("Level: %(level)s") % {"level": level_name(level)},
                          {"buyer": None, "as_level": level}))  # fmt: skip
    for plan in MembershipPlan.objects.filter(is_active=True):
        member = Membership(plan=plan, discount_percent=plan.discount_percent)  # never saved
        found.append(Role(f"plan:{plan.pk}", _("Annual member: %(plan)s") % {"plan": plan.name},
                          {"buyer": None, "as_level": None, "as_membership": member}))  # fmt: skip
    return found


def preview(*, sku: Sku, quantity: int = 1) -> list[RolePrice]:
    """The price of ``sku`` for every role, for one unit and for ``quantity`` units."""
    quantity = max(1, quantity)
    result = []
    for role in roles():
        unit = pricing.quote(lines=[(sku, 1)], **role.context)
        bulk = unit if quantity == 1 else pricing.quote(lines=[(sku, quantity)], **role.context)
        result.append(RolePrice(role=role, unit=unit, bulk=bulk, quantity=quantity))
    return result
