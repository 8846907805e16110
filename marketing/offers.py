"""Three pricing rules of ``orders/pricing.py`` and the first-order redemption's lifecycle.

* ``quantity_tier`` (order 130, group ``UNIT_PRICE``): a line of at least a tier's quantity pays
  the tier's unit price (the lowest reached), funded by the merchant, as an offer among the unit
  prices — per line the buyer gets the best of level price, member price, special and this.
* ``spend_tiers`` (order 300, no group: stacks): each running 满减 promotion takes its best tier
  reached on what the unit prices left — the whole order, or each merchant's part (``scope``); a
  promotion of one merchant counts only that merchant's lines. Per bucket (the order; one
  merchant's part) the best promotion applies, so a platform's whole-order 满减 and a merchant's
  own 满减 combine but two of one kind do not.
* ``first_order`` (order 400, group ``ORDER_OFFER``: the better of it and a coupon): a buyer with
  no earlier paid goods order — by the account, the e-mail or the phone, guests too — and no
  first-order discount held or used by any of them gets the running offer (the most generous if
  several). ``ref`` is the offer's id.

Redemption: ``order_placed`` inserts a ``FirstOrderRedemption`` holding the user, e-mail and
phone; the partial unique indexes make a second one for the same person wait for the first
transaction and fail, and the order is refused with ``OfferUnavailable`` (two tabs at once get it
once). ``order_paid`` marks it used; ``order_released`` and a full refund release it. A late payment
(after release) takes it again unless another order of the person was paid with it, in which case
that late order is refunded in full; an unpaid order holding it meanwhile loses it (``revoked``) and
is refunded in full if it is paid anyway. At most one first-order discount is ever paid per person.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import phones
from kameng.money import fen_to_yuan_str, round_half_up
from orders import pricing, signals
from orders.models import Order

from .models import FirstOrderOffer, FirstOrderRedemption, QuantityTier, SpendTier, SpendTierPromotion

RULE_QUANTITY = "quantity_tier"
RULE_SPEND = "spend_tiers"
RULE_FIRST_ORDER = "first_order"


def already_used() -> str:
    return _("The first-order discount has already been used by this account, e-mail or phone.")


ACTIVE = [FirstOrderRedemption.Status.HELD, FirstOrderRedemption.Status.USED]


def short_yuan(fen: int) -> str:
    """12000 → "120", 9950 → "99.5": how tiers are written ("满120减10")."""
    return fen_to_yuan_str(fen).rstrip("0").rstrip(".")


def tier_label(threshold_fen: int, discount_fen: int) -> str:
    return _("Spend ¥%(threshold)s, ¥%(discount)s off") % {
        "threshold": short_yuan(threshold_fen),
        "discount": short_yuan(discount_fen),
    }


# -- what runs: one cached snapshot ---------------------------------------------------------------------------

CACHE_KEY = "marketing:offers:v1"
CACHE_SECONDS = 60  # a change in admin clears it at once; this bounds a snapshot read during the change


@dataclass
class Snapshot:
    """Every promotion, offer and tier not yet over, so pricing a cart or showing a product costs no
    query in the steady state (the windows' start and end are checked at each use)."""

    promotions: list[SpendTierPromotion]  # with their tiers prefetched
    first_orders: list[FirstOrderOffer]
    quantity_tiers: dict[int, list[tuple[int, int]]]  # SKU id → [(from quantity, unit price)], ascending

    def running_promotions(self, now=None) -> list[SpendTierPromotion]:
        now = now or timezone.now()
        return [p for p in self.promotions if p.starts_at <= now and (p.ends_at is None or p.ends_at > now)]

    def running_first_orders(self, now=None) -> list[FirstOrderOffer]:
        now = now or timezone.now()
        return [o for o in self.first_orders if o.starts_at <= now and (o.ends_at is None or o.ends_at > now)]


def snapshot() -> Snapshot:
    cached = cache.get(CACHE_KEY)
    if cached is None:
        not_over = Q(is_active=True) & (Q(ends_at__isnull=True) | Q(ends_at__gt=timezone.now()))
        tiers: dict[int, list[tuple[int, int]]] = {}
        for sku_id, min_quantity, unit in QuantityTier.objects.order_by("sku_id", "min_quantity").values_list(
            "sku_id", "min_quantity", "unit_price_fen"
        ):
            tiers.setdefault(sku_id, []).append((min_quantity, unit))
        cached = Snapshot(
            promotions=list(SpendTierPromotion.objects.filter(not_over).order_by("pk").prefetch_related("tiers")),
            first_orders=list(FirstOrderOffer.objects.filter(not_over).order_by("pk")),
            quantity_tiers=tiers,
        )
        cache.set(CACHE_KEY, cached, CACHE_SECONDS)
    return cached


def forget_snapshot(**kwargs) -> None:
    """A promotion, offer or tier changed: drop the snapshot now and again after the commit (a
    reader between the two would have cached the old rows)."""
    cache.delete(CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(CACHE_KEY))


for _model in (SpendTierPromotion, SpendTier, FirstOrderOffer, QuantityTier):
    post_save.connect(forget_snapshot, sender=_model, dispatch_uid=f"marketing.snapshot.save.{_model.__name__}")
    post_delete.connect(forget_snapshot, sender=_model, dispatch_uid=f"marketing.snapshot.delete.{_model.__name__}")


# -- quantity tiers ----------------------------------------------------------------------------------------


def best_tiers(skus_quantities: dict[int, int]) -> dict[int, tuple[int, int]]:
    """SKU id → (unit price, from quantity) of the lowest tier its quantity reaches."""
    best: dict[int, tuple[int, int]] = {}
    tiers = snapshot().quantity_tiers
    for sku_id, quantity in skus_quantities.items():
        for min_quantity, unit in tiers.get(sku_id, []):
            if quantity >= min_quantity and (sku_id not in best or unit < best[sku_id][0]):
                best[sku_id] = (unit, min_quantity)
    return best


def quantity_tier_label(min_quantity: int, unit_fen: int) -> str:
    return _("Buy %(quantity)s+: ¥%(price)s each") % {"quantity": min_quantity, "price": short_yuan(unit_fen)}


@pricing.register_rule(RULE_QUANTITY, order=130, group=pricing.UNIT_PRICE)
def quantity_tier_rule(quote: pricing.Quote) -> None:
    tiers = best_tiers({line.sku.pk: line.quantity for line in quote.lines})
    for line in quote.lines:
        unit, min_quantity = tiers.get(line.sku.pk, (line.unit_price_fen, 0))
        if unit >= line.unit_price_fen:
            continue
        quote.add(
            pricing.Adjustment(
                rule=RULE_QUANTITY,
                label=quantity_tier_label(min_quantity, unit),
                amount_fen=(line.unit_price_fen - unit) * line.quantity,
                funded_by="merchant",
                sku_id=line.sku.pk,
            )
        )


# -- 满减 ---------------------------------------------------------------------------------------------------


def running_spend_promotions(now=None) -> list[SpendTierPromotion]:
    """Running promotions with their tiers (from the snapshot)."""
    return snapshot().running_promotions(now)


def best_tier(promotion: SpendTierPromotion, base_fen: int):
    reached = [tier for tier in promotion.tiers.all() if tier.threshold_fen <= base_fen]
    return max(reached, key=lambda tier: tier.discount_fen, default=None)


def _merchant_of(line: pricing.QuoteLine) -> int:
    return line.sku.product.merchant_id


@pricing.register_rule(RULE_SPEND, order=300)
def spend_tiers_rule(quote: pricing.Quote) -> None:
    promotions = running_spend_promotions()
    if not promotions:
        return
    # Buckets: the whole order, and each merchant's part. Per bucket the best promotion applies.
    merchants = sorted({_merchant_of(line) for line in quote.lines})
    buckets: list[tuple[str, int | None, list[SpendTierPromotion]]] = [
        ("order", None, [p for p in promotions if p.scope == SpendTierPromotion.Scope.ORDER])
    ] + [("merchant", m, [p for p in promotions if p.scope == SpendTierPromotion.Scope.MERCHANT]) for m in merchants]
    chosen = []  # every bucket counts what the unit prices left, not what another 满减 took
    for scope, bucket_merchant, candidates in buckets:
        best = None
        for promotion in candidates:
            counted = promotion.merchant_id or bucket_merchant
            lines = [line for line in quote.lines if counted is None or _merchant_of(line) == counted]
            if not lines or (scope == "merchant" and promotion.merchant_id not in (None, bucket_merchant)):
                continue
            tier = best_tier(promotion, sum(line.total_fen for line in lines))
            if tier is not None and (best is None or tier.discount_fen > best[1].discount_fen):
                best = (promotion, tier, lines)
        if best is not None:
            chosen.append(best)
    for promotion, tier, lines in chosen:
        _add_spread(quote, promotion, tier, lines)


def _add_spread(quote: pricing.Quote, promotion: SpendTierPromotion, tier, lines: list[pricing.QuoteLine]) -> None:
    """One adjustment for the whole order; for a part of it, one per line in proportion to the
    line totals (largest remainder to the fen), each labelled alike (the breakdown joins them)."""
    label = tier_label(tier.threshold_fen, tier.discount_fen)
    ref = str(promotion.pk)
    if len(lines) == len(quote.lines):
        quote.add(pricing.Adjustment(RULE_SPEND, label, tier.discount_fen, funded_by=promotion.funded_by, ref=ref))
        return
    base = sum(line.total_fen for line in lines)
    shares = [tier.discount_fen * line.total_fen // base for line in lines]
    order = sorted(range(len(lines)), key=lambda i: -lines[i].total_fen)
    for index in order[: tier.discount_fen - sum(shares)]:
        shares[index] += 1
    for line, share in zip(lines, shares, strict=True):
        if share:
            quote.add(
                pricing.Adjustment(RULE_SPEND, label, share, funded_by=promotion.funded_by, sku_id=line.sku.pk, ref=ref)
            )


# -- first order -------------------------------------------------------------------------------------------


def identity(*, buyer=None, email: str = "", phone: str = "") -> tuple[int | None, list[str], list[str]]:
    """(user id, e-mails, phones) that make up the person: the account and its own e-mail and
    phone, and those given at checkout, normalised as orders store them."""
    user_id = buyer.pk if buyer is not None and getattr(buyer, "is_authenticated", False) else None
    emails = {e.strip().lower() for e in [email, getattr(buyer, "email", "") if user_id else ""] if e and e.strip()}
    raw_phones = [phone, getattr(buyer, "phone", "") if user_id else ""]
    found = {phones.normalise(p) or p.strip() for p in raw_phones if p and p.strip()}
    return user_id, sorted(emails), sorted(found)


def _who(user_id, emails, phone_numbers, *, user_field: str, email_field: str, phone_field: str) -> Q | None:
    who = Q()
    if user_id is not None:
        who |= Q(**{user_field: user_id})
    if emails:
        who |= Q(**{f"{email_field}__in": emails})
    if phone_numbers:
        who |= Q(**{f"{phone_field}__in": phone_numbers})
    return who if who else None


def is_first_order(*, buyer=None, email: str = "", phone: str = "") -> bool:
    """No earlier paid goods order (not refunded in full) and no first-order discount held or used
    by the account, the e-mail or the phone. Unknown buyer (no e-mail yet): not yet."""
    user_id, emails, phone_numbers = identity(buyer=buyer, email=email, phone=phone)
    orders_who = _who(user_id, emails, phone_numbers, user_field="buyer_id", email_field="email", phone_field="phone")
    if orders_who is None:
        return False
    paid = (
        Order.objects.filter(orders_who, kind=Order.Kind.GOODS, paid_at__isnull=False)
        .exclude(status=Order.Status.REFUNDED)
        .exists()
    )
    if paid:
        return False
    held = _who(user_id, emails, phone_numbers, user_field="user_id", email_field="email", phone_field="phone")
    return not FirstOrderRedemption.objects.filter(held, status__in=ACTIVE).exists()


def first_order_amount(offer: FirstOrderOffer, total_fen: int) -> int:
    if offer.kind == FirstOrderOffer.Kind.FIXED:
        return min(offer.amount_fen, total_fen)
    amount = round_half_up(Decimal(total_fen) * offer.percent / 100)
    return min(amount, offer.cap_fen) if offer.cap_fen else amount


def running_first_order_offer(total_fen: int, now=None) -> FirstOrderOffer | None:
    """The running offer that saves most on ``total_fen`` (ties: the oldest)."""
    offers = snapshot().running_first_orders(now)
    return max(offers, key=lambda offer: first_order_amount(offer, total_fen), default=None)


@pricing.register_rule(RULE_FIRST_ORDER, order=400, group=pricing.ORDER_OFFER)
def first_order_rule(quote: pricing.Quote) -> None:
    offer = running_first_order_offer(quote.total_fen)
    if offer is None:
        return
    context = quote.context
    if not is_first_order(buyer=context.get("buyer"), email=context.get("email", ""), phone=context.get("phone", "")):
        return
    amount = first_order_amount(offer, quote.total_fen)
    if amount > 0:
        quote.add(
            pricing.Adjustment(
                RULE_FIRST_ORDER, _("First-order discount"), amount, funded_by=offer.funded_by, ref=str(offer.pk)
            )
        )


# -- the redemption's lifecycle (orders/signals.py; inside the order's transaction) ------------------------


@receiver(signals.order_placed, dispatch_uid="marketing.first_order.placed")
def redeem_first_order(sender, order: Order, quote: pricing.Quote, **kwargs) -> None:
    taken = next((a for a in quote.adjustments if a.rule == RULE_FIRST_ORDER and a.amount_fen > 0), None)
    if taken is None:
        return
    user_id, emails, phone_numbers = identity(buyer=order.buyer, email=order.email, phone=order.phone)
    # One row holds the account, the order's e-mail and phone: each is unique among held/used rows.
    # A signed-in buyer's own e-mail or phone, if different, is checked by is_first_order above.
    try:
        with transaction.atomic():  # a savepoint: the order's transaction goes on to be rolled back cleanly
            FirstOrderRedemption.objects.create(
                order=order, offer_id=int(taken.ref), user_id=user_id, email=order.email.strip().lower(),
                phone=phones.normalise(order.phone) or order.phone.strip(), amount_fen=taken.amount_fen,
            )  # fmt: skip
    except IntegrityError as exc:
        raise pricing.OfferUnavailable(already_used()) from exc
    if not is_first_order_after_own_redemption(order, user_id, emails, phone_numbers):
        raise pricing.OfferUnavailable(already_used())


def is_first_order_after_own_redemption(order: Order, user_id, emails, phone_numbers) -> bool:
    """After inserting ours: no other held/used redemption and no paid order by any identity of the
    person (the account's own e-mail or phone may differ from the order's)."""
    who = _who(user_id, emails, phone_numbers, user_field="user_id", email_field="email", phone_field="phone")
    if FirstOrderRedemption.objects.filter(who, status__in=ACTIVE).exclude(order=order).exists():
        return False
    orders_who = _who(user_id, emails, phone_numbers, user_field="buyer_id", email_field="email", phone_field="phone")
    return not (
        Order.objects.filter(orders_who, kind=Order.Kind.GOODS, paid_at__isnull=False)
        .exclude(status=Order.Status.REFUNDED)
        .exclude(pk=order.pk)
        .exists()
    )


@receiver(signals.order_paid, dispatch_uid="marketing.first_order.paid")
def first_order_paid(sender, order: Order, **kwargs) -> None:
    """The order's first-order redemption becomes ``used`` — at most one per person, ever.

    Held (paid in time): used. Released or revoked (paid after it expired — the buyer paid the price
    they were shown): it is taken again unless another order of the person already *paid* with the
    discount; a redemption another unpaid order of the person holds meanwhile is revoked (that
    order loses the discount: when it is paid, it is refused as below). When the discount cannot
    be given — another order paid with it — the order is not delivered and refunded in full."""
    redemption = FirstOrderRedemption.objects.filter(order=order).first()
    if redemption is None or redemption.status == FirstOrderRedemption.Status.USED:
        return
    if redemption.status != FirstOrderRedemption.Status.HELD:
        user_id, emails, phone_numbers = identity(buyer=order.buyer, email=order.email, phone=order.phone)
        who = _who(user_id, emails, phone_numbers, user_field="user_id", email_field="email", phone_field="phone")
        # The person's redemptions, ours included, locked in ascending id (two late payments at once
        # cannot lock them in opposite orders).
        mine = list(FirstOrderRedemption.objects.select_for_update().filter(Q(order=order) | who).order_by("pk"))
        others = [r for r in mine if r.order_id != order.pk]
        if any(other.status == FirstOrderRedemption.Status.USED for other in others):
            _refuse(order, reason=_("The first-order discount was already used by another order."))
            return
        held = [r.pk for r in others if r.status == FirstOrderRedemption.Status.HELD]
        FirstOrderRedemption.objects.filter(pk__in=held).update(status=FirstOrderRedemption.Status.REVOKED)
    try:
        with transaction.atomic():
            FirstOrderRedemption.objects.filter(pk=redemption.pk).update(status=FirstOrderRedemption.Status.USED)
    except IntegrityError:
        # Another order of the person was paid with it meanwhile (a concurrent payment): that one counts.
        _refuse(order, reason=_("The first-order discount was already used by another order."))


def _refuse(order: Order, *, reason: str) -> None:
    """A paid order whose first-order discount went to another paid order: refund it in full instead
    of delivering (delivery skips an order that is no longer ``paid``), like a late payment that finds
    no stock. Under the order lock, inside the payment's transaction; the refund starts on commit."""
    from orders import payment_port
    from orders.services import transition

    transition(
        order, source=[Order.Status.PAID], target=Order.Status.REFUNDING, kind="delivery_failed",
        note=f"first-order discount already used: {reason}"[:200], data={"first_order": "already_used"},
        refunding_reason=Order.RefundingReason.OUT_OF_STOCK,
    )  # fmt: skip
    payment_port.get().refund_in_full_on_commit(order_id=order.pk, reason=payment_port.RefundReason.OUT_OF_STOCK)


@receiver(signals.order_released, dispatch_uid="marketing.first_order.released")
def first_order_released(sender, order: Order, **kwargs) -> None:
    FirstOrderRedemption.objects.filter(order=order, status__in=ACTIVE).update(
        status=FirstOrderRedemption.Status.RELEASED
    )


@receiver(signals.order_refunded, dispatch_uid="marketing.first_order.refunded")
def first_order_refunded(sender, order: Order, before_fen: int, after_fen: int, **kwargs) -> None:
    if after_fen >= order.total_fen:
        first_order_released(sender, order=order)
