"""Coupons at checkout: the ``coupon`` pricing rule and the redemption at each step of an order.

The rule (``orders/pricing.py``, order 410, group ``ORDER_OFFER``: the buyer gets the better of a
coupon and the first-order discount, never both) reads ``quote.context["coupon_code"]`` and:

* finds the coupon (case-insensitive) and checks it: active, within its window, uses left (total
  and, for a signed-in buyer, their own), new customers only (a signed-in buyer with no paid
  order), for holders only (a signed-in buyer with a usable grant of it in their coupon wallet,
  marketing/wallet.py), the minimum spend — measured on what the goods it covers cost at this point, after the
  unit-price offers and 满减;
* covers the lines in its scope (all / category / product / SKU / one merchant's goods); a
  merchant-funded coupon never covers another merchant's goods, whatever its scope;
* takes off a fixed amount (at most what the covered lines cost) or a percentage of the covered
  lines, **rounded down to the fen** (the buyer never gets more than the stated percentage; 15% of
  ¥9.99 is 149 fen, not 150), then capped at ``max_discount_fen``;
* one order-level adjustment when every line is covered, else one per covered line (``sku_id``),
  the amount spread over them in proportion to what they cost (largest remainder first), each with
  ``ref`` = the code and ``funded_by`` the coupon's funder.

A code that does not apply leaves the quote alone and puts the reason, translated, in
``quote.context["coupon_refusal"]`` for the checkout to show.

Redemption (receivers of ``orders/signals.py``, inside the order's transaction):

* placed: a use is taken with a conditional UPDATE (``used_count < total_limit``), so under any
  number of concurrent checkouts it never goes above the limit; the per-buyer limit is checked under
  a transaction-level advisory lock on (coupon, buyer or guest e-mail), so one buyer's concurrent
  orders are counted one after the other. When either is gone, ``OfferUnavailable`` stops the order.
  Then the buyer's oldest usable grant of the coupon (the wallet) is taken for the order with a
  conditional UPDATE; a holders-only coupon without one stops the order too. Releasing the use
  gives the grant back.
* released (expired or cancelled unpaid) and fully refunded: the use is given back.
* paid: held → used. A late payment of a released order uses it again, taking a use back when one
  is left (the buyer already paid the discounted price; the limit still holds for new orders).
"""

from __future__ import annotations

from django.db import connection
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from kameng.money import fen_to_yuan_str
from marketing.models import Coupon, CouponGrant, CouponRedemption
from orders import pricing, signals
from orders.models import Order

RULE = "coupon"
RULE_ORDER = 410
REFUSAL = "coupon_refusal"  # key in quote.context: why the entered code gave nothing
_LOCK_NAMESPACE = 0x4B4D4350  # "KMCP": advisory locks of (coupon, buyer) while a use is taken


class Refused(Exception):
    pass


def discount_fen(coupon: Coupon, base_fen: int) -> int:
    """What ``coupon`` takes off goods costing ``base_fen``: percentages rounded down, then capped."""
    if coupon.kind == Coupon.Kind.PERCENT:
        amount = base_fen * coupon.percent // 100
        if coupon.max_discount_fen is not None:
            amount = min(amount, coupon.max_discount_fen)
    else:
        amount = coupon.amount_fen
    return max(0, min(amount, base_fen))


def covers(coupon: Coupon, sku) -> bool:
    product = sku.product
    if coupon.funded_by == Coupon.FundedBy.MERCHANT and product.merchant_id != coupon.merchant_id:
        return False
    return {
        Coupon.Scope.ALL: True,
        Coupon.Scope.CATEGORY: product.category_id == coupon.category_id,
        Coupon.Scope.PRODUCT: product.pk == coupon.product_id,
        Coupon.Scope.SKU: sku.pk == coupon.sku_id,
        Coupon.Scope.MERCHANT: product.merchant_id == coupon.scope_merchant_id,
    }[coupon.scope]


def _signed_in(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def _taken_by(coupon: Coupon, *, user=None, email: str = "") -> int:
    taken = CouponRedemption.objects.filter(
        coupon=coupon, status__in=[CouponRedemption.Status.HELD, CouponRedemption.Status.USED]
    )
    return taken.filter(user=user).count() if user is not None else taken.filter(email=email, user=None).count()


def check(coupon: Coupon | None, *, buyer, now) -> Coupon:
    """Raise :class:`Refused` with the buyer's reason unless ``coupon`` may be used now by ``buyer``."""
    if coupon is None or not coupon.is_active:
        raise Refused(_("There is no coupon with this code."))
    if coupon.starts_at and now < coupon.starts_at:
        raise Refused(_("This coupon is not valid yet."))
    if coupon.ends_at and now >= coupon.ends_at:
        raise Refused(_("This coupon has expired."))
    if coupon.total_limit is not None and coupon.used_count >= coupon.total_limit:
        raise Refused(_("This coupon has been used up."))
    signed_in = _signed_in(buyer)
    if coupon.new_users_only:
        if not signed_in:
            raise Refused(_("This coupon is for new customers: sign in or sign up to use it."))
        if Order.objects.filter(buyer=buyer, paid_at__isnull=False).exists():
            raise Refused(_("This coupon is for new customers only."))
    if signed_in and coupon.per_user_limit is not None and _taken_by(coupon, user=buyer) >= coupon.per_user_limit:
        raise Refused(_("You have already used this coupon."))
    if coupon.holders_only:
        if not signed_in:
            raise Refused(_("This coupon is only for those who received it: sign in to use it."))
        if not _usable_grants(coupon, buyer, now).exists():
            raise Refused(_("This coupon is only for those who hold it in their coupon wallet."))
    return coupon


def _usable_grants(coupon: Coupon, user, now):
    """The user's grants of ``coupon`` (marketing/wallet.py) not used by an order and not expired."""
    return CouponGrant.objects.filter(coupon=coupon, user=user, order__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def _take_grant(coupon: Coupon, user, order: Order) -> bool:
    """The buyer's oldest usable grant of ``coupon`` is used by ``order`` (a conditional UPDATE:
    two orders never take one grant)."""
    now = timezone.now()
    for _attempt in range(3):
        grant = _usable_grants(coupon, user, now).order_by(F("expires_at").asc(nulls_last=True), "pk").first()
        if grant is None:
            return False
        if CouponGrant.objects.filter(pk=grant.pk, order__isnull=True).update(order=order):
            return True
    return False


def find(code: str) -> Coupon | None:
    return Coupon.objects.filter(code__iexact=code.strip()).first() if code.strip() else None


@pricing.register_rule(RULE, order=RULE_ORDER, group=pricing.ORDER_OFFER)
def coupon_rule(quote: pricing.Quote) -> None:
    code = (quote.context.get("coupon_code") or "").strip()
    if not code:
        return
    try:
        coupon = check(find(code), buyer=quote.context.get("buyer"), now=timezone.now())
        covered = [line for line in quote.lines if covers(coupon, line.sku)]
        if not covered:
            raise Refused(_("This coupon does not apply to anything in your cart."))
        base = sum(line.total_fen for line in covered)
        if base < coupon.min_spend_fen:
            raise Refused(
                _("This coupon needs a spend of at least ¥%(amount)s on the goods it covers.")
                % {"amount": fen_to_yuan_str(coupon.min_spend_fen)}
            )
    except Refused as refused:
        quote.context[REFUSAL] = str(refused)
        return
    quote.context.pop(REFUSAL, None)
    amount = discount_fen(coupon, base)
    label = _("Coupon %(code)s") % {"code": coupon.code}
    offer = {"rule": RULE, "label": label, "funded_by": coupon.funded_by, "ref": coupon.code}
    if len(covered) == len(quote.lines):
        quote.add(pricing.Adjustment(amount_fen=amount, **offer))
        return
    shares = [amount * line.total_fen // base if base else 0 for line in covered]
    leftover = amount - sum(shares)
    for index in sorted(range(len(covered)), key=lambda i: -covered[i].total_fen)[:leftover]:
        shares[index] += 1
    for line, share in zip(covered, shares, strict=True):
        if share:
            quote.add(pricing.Adjustment(amount_fen=share, sku_id=line.sku.pk, **offer))


# --- redemption ------------------------------------------------------------------------------------------
def _lock_buyer(coupon: Coupon, identity: str) -> None:
    """One buyer's uses of one coupon are counted one transaction at a time (released at commit)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_NAMESPACE, f"{coupon.pk}:{identity}"])


def redeem(*, order: Order, quote: pricing.Quote) -> CouponRedemption | None:
    """Take the use ``quote``'s coupon discount needs, or raise ``OfferUnavailable``."""
    used = [a for a in quote.adjustments if a.rule == RULE]
    if not used:
        if quote.context.get(REFUSAL):
            # The code the buyer entered no longer applies (its last use went while they checked
            # out): not placed at a price they were not shown.
            raise pricing.OfferUnavailable(quote.context[REFUSAL])
        return None
    coupon = find(used[0].ref)
    gone = _("The coupon %(code)s has just been used up. Please check the new total.") % {"code": used[0].ref}
    if coupon is None:
        raise pricing.OfferUnavailable(gone)
    user = order.buyer if order.buyer_id else None
    if coupon.per_user_limit is not None or coupon.new_users_only:
        _lock_buyer(coupon, f"u{user.pk}" if user else f"e{order.email}")
    if coupon.new_users_only and user is not None:
        # Checked again under the buyer's lock: a new customer's coupon is once per person, so a
        # second unpaid order (placed before the first is paid) does not take it again.
        paid_before = Order.objects.filter(buyer=user, paid_at__isnull=False).exclude(pk=order.pk).exists()
        if paid_before or _taken_by(coupon, user=user):
            raise pricing.OfferUnavailable(
                _("The coupon %(code)s is for a new customer's first order only. Please check the new total.")
                % {"code": coupon.code}
            )
    if coupon.per_user_limit is not None and _taken_by(coupon, user=user, email=order.email) >= coupon.per_user_limit:
        raise pricing.OfferUnavailable(
            _("You have already used the coupon %(code)s. Please check the new total.") % {"code": coupon.code}
        )
    within = Q(total_limit__isnull=True) | Q(used_count__lt=F("total_limit"))
    if not Coupon.objects.filter(within, pk=coupon.pk, is_active=True).update(used_count=F("used_count") + 1):
        raise pricing.OfferUnavailable(gone)
    # The wallet's grant is used by this order (after the coupon's row: the lock order); a
    # holders-only coupon needs one.
    if user is not None and not _take_grant(coupon, user, order) and coupon.holders_only:
        raise pricing.OfferUnavailable(
            _("The coupon %(code)s is no longer in your coupon wallet. Please check the new total.")
            % {"code": coupon.code}
        )
    return CouponRedemption.objects.create(
        coupon=coupon, order=order, user=user, email="" if user else order.email,
        amount_fen=sum(a.amount_fen for a in used),
    )  # fmt: skip


def give_back(order: Order, *, was: str) -> bool:
    """Release the order's use if it is ``was`` (held or used) and return it to the coupon."""
    redemption = CouponRedemption.objects.filter(order=order, status=was).first()
    if redemption is None:
        return False
    if not CouponRedemption.objects.filter(pk=redemption.pk, status=was).update(
        status=CouponRedemption.Status.RELEASED
    ):
        return False
    Coupon.objects.filter(pk=redemption.coupon_id, used_count__gt=0).update(used_count=F("used_count") - 1)
    CouponGrant.objects.filter(order=order).update(order=None)  # back in the wallet
    return True


def _placed(sender, *, order, quote, **kwargs) -> None:
    redeem(order=order, quote=quote)


def _released(sender, *, order, **kwargs) -> None:
    give_back(order, was=CouponRedemption.Status.HELD)


def _paid(sender, *, order, late=False, **kwargs) -> None:
    Status = CouponRedemption.Status
    if CouponRedemption.objects.filter(order=order, status=Status.HELD).update(status=Status.USED) or not late:
        return
    redemption = CouponRedemption.objects.filter(order=order, status=Status.RELEASED).first()
    if redemption is None:
        return
    CouponRedemption.objects.filter(pk=redemption.pk).update(status=Status.USED)
    within = Q(total_limit__isnull=True) | Q(used_count__lt=F("total_limit"))
    Coupon.objects.filter(within, pk=redemption.coupon_id).update(used_count=F("used_count") + 1)


def _refunded(sender, *, order, before_fen, after_fen, **kwargs) -> None:
    if after_fen >= order.total_fen and before_fen < order.total_fen:
        give_back(order, was=CouponRedemption.Status.USED)


def connect() -> None:
    signals.order_placed.connect(_placed, sender=Order, dispatch_uid="marketing.coupons.placed")
    signals.order_released.connect(_released, sender=Order, dispatch_uid="marketing.coupons.released")
    signals.order_paid.connect(_paid, sender=Order, dispatch_uid="marketing.coupons.paid")
    signals.order_refunded.connect(_refunded, sender=Order, dispatch_uid="marketing.coupons.refunded")
