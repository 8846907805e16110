"""Checkout, the order lifecycle and delivery.

The lifecycle (DESIGN.md):

    pending_payment ──paid──▶ paid ──codes handed over──▶ delivered
          │                   │  └──manual items──▶ processing ──merchant done──▶ delivered
          │                   └──cannot deliver──▶ refunding ──▶ refunded
          └──deadline / shopper cancels──▶ expired / cancelled   (a late payment still → paid)

Every transition is :func:`transition`: one conditional UPDATE (``WHERE status IN (...)``) that
reports whether it happened, plus an OrderEvent. Locks are taken through ``orders/locks.py``, in
the order stated there; no network call while rows are locked.

Codes are reserved at checkout (``catalog/allocation.py``: ``SELECT … FOR UPDATE SKIP LOCKED`` on codes that are for
sale now — available, or reserved by an order whose deadline has passed (so expiry never depends
on a worker having run). Delivery runs at most once per order: the order row is locked and must
be ``paid``; the transition and a unique Fulfilment row make a second run a no-op.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import phones
from accounts.models import Merchant
from accounts.points import InsufficientPoints as PointsSpentMeanwhile
from catalog import allocation
from catalog.models import CardCode, Product, Sku
from catalog.signals import send_stock_changed
from kameng.money import fen_to_yuan_str
from kameng.tasks import enqueue_on_commit
from orders import locks, loyalty, payment_port, pricing, signals
from orders.models import TRANSITIONS, Fulfilment, Order, OrderEvent, OrderItem, OrderItemCode

logger = logging.getLogger(__name__)
Status = Order.Status

# -- errors shown to the shopper ---------------------------------------------------------------------


class CheckoutError(Exception):
    """A reason checkout cannot go ahead, worded for the shopper."""


class OutOfStock(CheckoutError):
    def __init__(self, sku: Sku, available: int):
        self.sku, self.available = sku, available
        if available:
            message = _("Only %(count)s left of %(product)s · %(label)s.")
        else:
            message = _("%(product)s · %(label)s is sold out.")
        super().__init__(message % {"count": available, "product": sku.product.title, "label": sku.label})


# -- order numbers and query secrets ---------------------------------------------------------------------


def new_order_number() -> str:
    """``K`` + local date + 10 random digits: unguessable enough not to enumerate, easy to read out."""
    return f"K{timezone.localtime():%y%m%d}{secrets.randbelow(10**10):010d}"


def new_query_secret() -> str:
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: read over the phone
    return "".join(secrets.choice(alphabet) for _ in range(10))


def hash_query_secret(secret: str, *, chosen: bool) -> str:
    """A generated secret has 50 bits of entropy: a keyed HMAC is enough and fast. A secret the
    buyer chose may be weak: it gets Django's slow password hash."""
    if chosen:
        return make_password(secret)
    digest = hmac.new(settings.SECRET_KEY.encode(), f"order-secret:{secret}".encode(), hashlib.sha256).hexdigest()
    return f"h${digest}"


def check_query_secret(order: Order, secret: str) -> bool:
    """Constant-time comparison of a secret against the order's stored hash."""
    stored = order.query_secret_hash
    if not stored or not secret:
        return False
    if stored.startswith("h$"):
        return hmac.compare_digest(stored, hash_query_secret(secret.strip().upper(), chosen=False))
    return check_password(secret.strip(), stored)


# A look-up by e-mail checks the secret against several orders; a secret the buyer chose costs a
# slow password hash each (0.6 s with Django's default hasher on a 2-core machine), a generated one a fast HMAC.
LOOKUP_EMAIL_CANDIDATES = 20  # most recent open-or-finished orders of the address considered
LOOKUP_SLOW_CHECKS = 3  # at most this many slow hashes per look-up (the most recent chosen secrets)
LOOKUP_EMAIL_DAYS = 180  # older orders are found by number


def find_guest_orders(*, needle: str, secret: str, now=None) -> list[Order]:
    """Guest orders that ``secret`` opens: the one with number ``needle``, or, when ``needle`` is an
    e-mail address, its recent orders — not cancelled or expired ones, which hold nothing to fetch —
    with the work bounded (``LOOKUP_*`` above). ``needle`` is normalised (``LookupForm.clean_number``)."""
    if not secret:
        return []
    if "@" not in needle:
        order = Order.objects.filter(number=needle, buyer__isnull=True).first()
        return [order] if order is not None and check_query_secret(order, secret) else []
    now = now or timezone.now()
    candidates = (
        Order.objects.filter(
            email__iexact=needle, buyer__isnull=True, created_at__gte=now - timedelta(days=LOOKUP_EMAIL_DAYS)
        )
        .exclude(status__in=[Status.CANCELLED, Status.EXPIRED])
        .exclude(status=Status.PENDING_PAYMENT, reserved_until__lte=now)
        .order_by("-created_at")[:LOOKUP_EMAIL_CANDIDATES]
    )
    found, slow = [], 0
    for order in candidates:
        if not order.query_secret_hash.startswith("h$"):  # a chosen secret: a slow hash
            if slow >= LOOKUP_SLOW_CHECKS:
                continue
            slow += 1
        if check_query_secret(order, secret):
            found.append(order)
    return found


# -- transitions -----------------------------------------------------------------------------------------


def transition(
    order: Order, *, source: list[str], target: str, kind: str, actor=None, note: str = "", data=None, **fields
) -> bool:
    """Move ``order`` to ``target`` if it is in one of ``source`` states; record an OrderEvent.

    Every move must be in the lifecycle table (``orders.models.TRANSITIONS``): asking for another is
    a programming error and raises before touching the row. Returns whether the UPDATE changed the
    row. ``order`` is refreshed in memory when it did.
    """
    illegal = [state for state in source if target not in TRANSITIONS[state]]
    if illegal:
        raise ValueError(f"an order cannot go from {', '.join(illegal)} to {target}")
    if target == Status.REFUNDING and not fields.get("refunding_reason"):
        raise ValueError("an order goes to refunding with a refunding_reason")
    fields.setdefault("status_changed_at", timezone.now())
    changed = Order.objects.filter(pk=order.pk, status__in=source).update(status=target, **fields)
    if changed:
        previous = order.status
        order.status = target
        for name, value in fields.items():
            setattr(order, name, value)
        OrderEvent.objects.create(
            order=order, from_status=previous, to_status=target, kind=kind, actor=actor, note=note, data=data or {}
        )
    return bool(changed)


def record_event(order: Order, *, kind: str, actor=None, note: str = "", data=None) -> None:
    OrderEvent.objects.create(
        order=order,
        from_status=order.status,
        to_status=order.status,
        kind=kind,
        actor=actor,
        note=note,
        data=data or {},
    )


def effective_status(order: Order, *, now=None) -> str:
    """What the buyer sees: an unpaid order past its deadline is expired, whether or not the sweeper ran."""
    now = now or timezone.now()
    if order.status == Status.PENDING_PAYMENT and order.reserved_until <= now:
        return Status.EXPIRED
    return order.status


# -- checkout --------------------------------------------------------------------------------------------


@dataclass
class CartLine:
    sku_id: int
    quantity: int
    buyer_inputs: dict = field(default_factory=dict)


@dataclass
class PlacedOrder:
    order: Order
    query_secret: str | None  # the generated secret, shown once; None when chosen or signed in
    created: bool


def unpaid_order_limit_reached(*, buyer, email: str, client_ip: str | None, now) -> bool:
    """Whether this e-mail, buyer or IP already has ``MAX_UNPAID_ORDERS`` open unpaid orders (one
    query: a count per key over their index scans). Orders store the e-mail lowercased, so the
    comparison is exact and can use the (email, status) index."""
    limit = settings.MAX_UNPAID_ORDERS
    checks = {"email": Q(email=email.strip().lower())}
    if buyer is not None:
        checks["buyer"] = Q(buyer=buyer)
    if client_ip:
        checks["ip"] = Q(client_ip=client_ip)
    matching = Q()
    for check in checks.values():
        matching |= check
    counts = Order.objects.filter(matching, status=Status.PENDING_PAYMENT, reserved_until__gt=now).aggregate(
        **{name: Count("pk", filter=check) for name, check in checks.items()}
    )
    return any(count >= limit for count in counts.values())


def _check_lines(lines: list[CartLine], *, buyer, skus: dict[int, Sku] | None = None) -> list[tuple[Sku, CartLine]]:
    if not lines:
        raise CheckoutError(_("Your cart is empty."))
    wanted = {line.sku_id for line in lines}
    if skus is None or not wanted <= skus.keys():
        skus = {
            sku.pk: sku
            for sku in Sku.objects.select_related("product", "product__merchant").filter(pk__in=sorted(wanted))
        }
    checked = []
    per_product: dict[int, int] = {}
    for line in lines:
        sku = skus.get(line.sku_id)
        if (
            sku is None
            or not sku.is_active
            or sku.product.status != Product.Status.LISTED
            or sku.product.merchant.status != Merchant.Status.ACTIVE
        ):
            raise CheckoutError(_("One of the items is no longer on sale. Please check your cart."))
        per_product[sku.product_id] = per_product.get(sku.product_id, 0) + line.quantity
        checked.append((sku, line))
    for sku, _line in checked:
        product, quantity = sku.product, per_product[sku.product_id]
        if not product.min_per_order <= quantity <= product.max_per_order:
            raise CheckoutError(
                _("%(product)s: buy between %(low)s and %(high)s per order.")
                % {"product": product.title, "low": product.min_per_order, "high": product.max_per_order}
            )
        if product.max_per_buyer and buyer is not None:
            bought = (
                OrderItem.objects.filter(order__buyer=buyer, sku__product=product)
                .exclude(order__status__in=[Status.EXPIRED, Status.CANCELLED, Status.REFUNDED])
                .aggregate(n=Sum("quantity"))["n"]
                or 0
            )
            if bought + quantity > product.max_per_buyer:
                raise CheckoutError(
                    _("%(product)s is limited to %(limit)s per buyer.")
                    % {"product": product.title, "limit": product.max_per_buyer}
                )
    return sorted(checked, key=lambda pair: pair[0].pk)  # lock order: codes by SKU, then pk


def take_codes(*, sku: Sku, quantity: int, now) -> list[int]:
    """Lock up to ``quantity`` codes of ``sku`` that are for sale now (``catalog.allocation.take``)
    and free them from any expired reservation: the old holder's link lets go first, which keeps the
    partial unique constraint (a code held once) satisfied. Returns their ids."""
    ids = allocation.take(sku=sku, quantity=quantity, now=now)
    if ids:
        OrderItemCode.objects.filter(code_id__in=ids, status=OrderItemCode.Status.RESERVED).update(
            status=OrderItemCode.Status.RELEASED
        )
    return ids


def place_order(
    *,
    lines: list[CartLine],
    buyer=None,
    email: str,
    phone: str = "",
    sms_opt_in: bool = False,
    chosen_secret: str = "",
    idempotency_key: str,
    client_ip: str | None = None,
    language: str = "zh-hans",
    coupon_code: str = "",
    use_points: bool = False,
    shown_total_fen: int | None = None,
    skus: dict[int, Sku] | None = None,
    key_unused: bool = False,
) -> PlacedOrder:
    """Price the cart on the server, reserve the codes and create a pending order.

    The same ``idempotency_key`` (one per rendered checkout form) always gives the same order: a
    double click or a resubmitted form places one order.

    ``skus`` (by id, with ``product`` and ``product__merchant`` loaded) saves reading the SKUs again
    when the caller just read them; their sale status is checked here all the same.
    ``use_points``: the buyer chose to pay part with points (the ``points`` pricing rule); the points
    are debited in this transaction, and an order whose points were spent meanwhile is refused.
    ``shown_total_fen``: the total the checkout page showed; when the price now differs (a flash
    special sold out, an offer ended meanwhile) nothing is placed and the buyer is shown the new one.
    ``key_unused=True``: the caller looked the key up itself a moment ago and found no order (the
    unique constraint still makes a racing duplicate return the winner's order).
    """
    if not key_unused:
        existing = Order.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return PlacedOrder(order=existing, query_secret=None, created=False)
    if buyer is not None and not buyer.is_authenticated:
        buyer = None
    now = timezone.now()
    checked = _check_lines(lines, buyer=buyer, skus=skus)
    if unpaid_order_limit_reached(buyer=buyer, email=email, client_ip=client_ip, now=now):
        raise CheckoutError(
            _("You already have %(limit)s unpaid orders. Pay or cancel one of them first.")
            % {"limit": settings.MAX_UNPAID_ORDERS}
        )
    quote = pricing.quote(
        lines=[(sku, line.quantity) for sku, line in checked], buyer=buyer, coupon_code=coupon_code,
        use_points=use_points, email=email, phone=phone,  # the person, for the first-order discount
    )  # fmt: skip
    if shown_total_fen is not None and shown_total_fen != quote.total_fen:
        raise CheckoutError(
            _("The price changed while you were checking out: the total is now %(total)s. Please check the order.")
            % {"total": f"¥{fen_to_yuan_str(quote.total_fen)}"}
        )
    generated = None
    if buyer is None:
        generated = None if chosen_secret else new_query_secret()
        secret_hash = hash_query_secret(chosen_secret or generated or "", chosen=bool(chosen_secret))
    else:
        secret_hash = ""

    try:
        with transaction.atomic():
            order = Order.objects.create(
                number=new_order_number(),
                buyer=buyer,
                email=email.strip().lower(),
                phone=phones.normalise(phone) or phone.strip(),  # E.164: a verified number claims it
                sms_opt_in=bool(sms_opt_in and phone),
                query_secret_hash=secret_hash,
                subtotal_fen=quote.subtotal_fen,
                discount_fen=quote.discount_fen,
                total_fen=quote.total_fen,
                pricing=quote.breakdown(),
                reserved_until=now + timedelta(minutes=settings.ORDER_RESERVATION_MINUTES),
                idempotency_key=idempotency_key,
                client_ip=client_ip,
                language=language,
            )
            links = []
            for (sku, line), quoted in zip(checked, quote.lines, strict=True):
                item = OrderItem.objects.create(
                    order=order,
                    sku=sku,
                    merchant=sku.product.merchant,
                    product_title=sku.product.title,
                    sku_label=sku.label,
                    product_title_en=sku.product.title_en,
                    sku_label_en=sku.label_en,
                    delivery_mode=sku.product.delivery_mode,
                    reusable_code=sku.reusable_code,
                    unit_price_fen=quoted.unit_price_fen,
                    quantity=line.quantity,
                    discount_fen=quoted.discount_fen,
                    platform_funded_fen=quoted.platform_funded_fen,
                    total_fen=quoted.total_fen,
                    buyer_inputs=line.buyer_inputs,
                )
                if sku.product.delivery_mode != Product.DeliveryMode.AUTOMATIC:
                    continue
                if sku.reusable_code:
                    # Handed out without being used up: nothing to reserve, but there must be one.
                    if not allocation.has_for_sale(sku=sku, now=now):
                        raise OutOfStock(sku, 0)
                    continue
                ids = take_codes(sku=sku, quantity=line.quantity, now=now)
                if len(ids) < line.quantity:
                    raise OutOfStock(sku, len(ids))
                allocation.reserve(code_ids=ids, until=order.reserved_until)
                links += [OrderItemCode(item=item, code_id=code_id) for code_id in ids]
            OrderItemCode.objects.bulk_create(links)
            try:
                loyalty.spend_points(order=order, used=quote.points_used)  # after the codes: the lock order
            except PointsSpentMeanwhile as exc:
                raise CheckoutError(
                    _("Your points balance changed (%(balance)s points now). Please check the order again.")
                    % {"balance": exc.balance}
                ) from exc
            try:
                signals.order_placed.send(sender=Order, order=order, quote=quote)
            except pricing.OfferUnavailable as exc:
                raise CheckoutError(exc.user_message) from exc
            OrderEvent.objects.create(
                order=order, to_status=order.status, kind="placed", actor=buyer, data={"total_fen": order.total_fen}
            )
    except IntegrityError:
        # Two submissions of one form raced past the first lookup: the loser returns the winner's order.
        existing = Order.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return PlacedOrder(order=existing, query_secret=None, created=False)
    return PlacedOrder(order=order, query_secret=generated, created=True)


class TopUpError(CheckoutError):
    pass


def check_top_up_amount(amount_fen: int) -> None:
    """Raise :class:`TopUpError` unless ``amount_fen`` is within the configured top-up bounds."""
    low, high = settings.WALLET_TOP_UP_MIN_FEN, settings.WALLET_TOP_UP_MAX_FEN
    if not low <= amount_fen <= high:
        raise TopUpError(
            _("A top-up is between %(low)s and %(high)s yuan.")
            % {"low": fen_to_yuan_str(low), "high": fen_to_yuan_str(high)}
        )


def place_top_up(
    *, buyer, amount_fen: int, idempotency_key: str, client_ip: str | None = None, language: str = "zh-hans"
) -> PlacedOrder:
    """A pending order that credits ``amount_fen`` to the buyer's wallet once paid through a gateway.

    It has no items and holds no stock; it is paid, expired and found lost at the gateway like any
    order. The same ``idempotency_key`` gives the same order.
    """
    if buyer is None or not buyer.is_authenticated:
        raise TopUpError(_("Sign in to top up your wallet."))
    check_top_up_amount(amount_fen)
    existing = Order.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return PlacedOrder(order=existing, query_secret=None, created=False)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                number=new_order_number(), kind=Order.Kind.TOP_UP, buyer=buyer, email=buyer.email,
                subtotal_fen=amount_fen, total_fen=amount_fen, idempotency_key=idempotency_key,
                reserved_until=timezone.now() + timedelta(minutes=settings.ORDER_RESERVATION_MINUTES),
                client_ip=client_ip, language=language,
                pricing={"top_up_fen": amount_fen},
            )  # fmt: skip
            OrderEvent.objects.create(
                order=order, to_status=order.status, kind="placed", actor=buyer, data={"top_up_fen": amount_fen}
            )
    except IntegrityError:
        existing = Order.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return PlacedOrder(order=existing, query_secret=None, created=False)
    return PlacedOrder(order=order, query_secret=None, created=True)


def _deliver_top_up(order: Order, now) -> str:
    """Credit the wallet (caller holds the order lock; lock order Order → Wallet). Once per order:
    the wallet entry's (kind, reference) is unique and the order leaves ``paid`` in this transaction."""
    from accounts import wallet

    if order.buyer is None:  # the database refuses a top-up without a buyer (order_top_up_has_buyer_and_amount)
        raise ValueError(f"top-up {order.number} has no buyer")
    wallet.credit(
        user=order.buyer, amount_fen=order.total_fen, kind=wallet.Kind.TOP_UP, reference=order.number, order=order,
        note=order.number,
    )  # fmt: skip
    Fulfilment.objects.create(order=order, delivered_codes=0, reallocated_codes=0)
    transition(order, source=[Status.PAID], target=Status.DELIVERED, kind="wallet_credited", delivered_at=now)
    return DeliveryOutcome.DELIVERED


def cancel_order(*, order: Order, actor=None) -> bool:
    """The shopper gives up an unpaid order: codes go back to stock at once."""
    with transaction.atomic():
        locked = locks.lock_order(order.pk)
        if not transition(
            locked, source=[Status.PENDING_PAYMENT], target=Status.CANCELLED, kind="cancelled", actor=actor,
            closed_at=timezone.now(),
        ):  # fmt: skip
            return False
        _release_reserved_codes(locked)
        loyalty.unpaid_closed(locked)  # the points it used go back
        signals.order_released.send(sender=Order, order=locked)
    order.status = locked.status
    return True


def _release_reserved_codes(order: Order) -> int:
    """Give this order's reserved codes back to stock (caller holds the order lock)."""
    code_ids = list(
        OrderItemCode.objects.filter(item__order=order, status=OrderItemCode.Status.RESERVED).values_list(
            "code_id", flat=True
        )
    )
    if not code_ids:
        return 0
    locked = allocation.lock(code_ids=code_ids, status=CardCode.Status.RESERVED)
    # Re-read under the code locks: a code another checkout took over is no longer ours.
    ours = list(
        OrderItemCode.objects.filter(
            item__order=order, status=OrderItemCode.Status.RESERVED, code_id__in=locked
        ).values_list("code_id", flat=True)
    )
    allocation.release(code_ids=ours)
    OrderItemCode.objects.filter(item__order=order, status=OrderItemCode.Status.RESERVED).update(
        status=OrderItemCode.Status.RELEASED
    )
    return len(ours)


# -- payment ---------------------------------------------------------------------------------------------


class PaidOutcome(StrEnum):
    CONFIRMED = "confirmed"  # the order is now paid; delivery queued
    LATE = "late"  # paid after expiry/cancel: delivered if stock allows, else refunded
    ALREADY_PAID = "already_paid"  # another payment paid it first: this one is a duplicate
    AMOUNT_MISMATCH = "amount_mismatch"


def confirm_paid(*, order: Order, amount_fen: int, payment_ref: str, actor=None) -> str:
    """Record that the buyer paid ``amount_fen`` for ``order``. Must be called with the order row
    locked (payments.services does). Idempotency per payment is the payments app's job; this
    decides what a verified payment means for the order."""
    if order.status in (Status.PENDING_PAYMENT, Status.EXPIRED, Status.CANCELLED):
        if amount_fen != order.total_fen:
            record_event(order, kind="payment_amount_mismatch", data={"paid_fen": amount_fen, "ref": payment_ref})
            return PaidOutcome.AMOUNT_MISMATCH
        late = order.status != Status.PENDING_PAYMENT or order.reserved_until <= timezone.now()
        transition(
            order,
            source=[Status.PENDING_PAYMENT, Status.EXPIRED, Status.CANCELLED],
            target=Status.PAID,
            kind="paid_late" if late else "paid",
            actor=actor,
            data={"amount_fen": amount_fen, "ref": payment_ref},
            paid_at=timezone.now(),
            closed_at=None,
        )
        # Points earned (once per order), a late payment's released points used again, the level
        # recomputed: under the order lock, before the points account's (orders/loyalty.py).
        loyalty.paid(order)
        signals.order_paid.send(sender=Order, order=order, late=late)
        from orders.tasks import deliver_order

        enqueue_on_commit(deliver_order, order_id=order.pk)
        return PaidOutcome.LATE if late else PaidOutcome.CONFIRMED
    record_event(order, kind="payment_after_paid", data={"amount_fen": amount_fen, "ref": payment_ref})
    return PaidOutcome.ALREADY_PAID


# -- delivery --------------------------------------------------------------------------------------------


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    PROCESSING = "processing"  # manual items wait for the merchant
    REFUNDING = "refunding"  # not enough stock after a late payment
    SKIPPED = "skipped"  # not paid (already delivered, refunding, …): nothing to do


def deliver_order(*, order_id: int) -> str:
    """Hand over the codes of a paid order — at most once, however often it is called."""
    now = timezone.now()
    with transaction.atomic():
        order = locks.lock_order_if_any(order_id)
        if order is None or order.status != Status.PAID:
            return DeliveryOutcome.SKIPPED
        if order.kind == Order.Kind.TOP_UP:
            return _deliver_top_up(order, now)
        if order.kind == Order.Kind.MEMBERSHIP:
            from orders import membership

            return membership.deliver(order, now)
        items = list(order.items.all())
        automatic = [i for i in items if i.delivery_mode == Product.DeliveryMode.AUTOMATIC]
        manual = [i for i in items if i.delivery_mode != Product.DeliveryMode.AUTOMATIC]

        # 1. Lock the codes this order reserved, then re-read which are still ours.
        held_ids = list(
            OrderItemCode.objects.filter(item__order=order, status=OrderItemCode.Status.RESERVED).values_list(
                "code_id", flat=True
            )
        )
        allocation.lock(code_ids=held_ids)
        still_held: dict[int, list[int]] = {}
        for item_id, code_id in OrderItemCode.objects.filter(
            item__order=order, status=OrderItemCode.Status.RESERVED
        ).values_list("item_id", "code_id"):
            still_held.setdefault(item_id, []).append(code_id)

        # 2. Top up what a lost reservation took away (late payment), or pick the reusable code.
        new_links, reallocated = [], 0
        for item in sorted(automatic, key=lambda i: i.sku_id):
            missing = item.quantity - len(still_held.get(item.pk, []))
            if item.reusable_code:
                reusable_id = allocation.first_for_sale(sku=item.sku_id, now=now)
                if reusable_id is None:
                    return _cannot_deliver(order, item)
                new_links += [
                    OrderItemCode(item=item, code_id=reusable_id, status=OrderItemCode.Status.DELIVERED, reusable=True)
                    for _ in range(item.quantity)
                ]
                continue
            if missing > 0:
                ids = take_codes(sku=item.sku, quantity=missing, now=now)
                if len(ids) < missing:
                    return _cannot_deliver(order, item)
                reallocated += len(ids)
                new_links += [
                    OrderItemCode(item=item, code_id=code_id, status=OrderItemCode.Status.DELIVERED) for code_id in ids
                ]

        # 3. Hand over: codes sold (a reusable one counts a sale), links delivered, order moves on.
        OrderItemCode.objects.bulk_create(new_links)
        OrderItemCode.objects.filter(item__order=order, status=OrderItemCode.Status.RESERVED).update(
            status=OrderItemCode.Status.DELIVERED
        )
        single_use = list(
            OrderItemCode.objects.filter(
                item__order=order, status=OrderItemCode.Status.DELIVERED, reusable=False
            ).values_list("code_id", flat=True)
        )
        allocation.sell(code_ids=single_use, now=now)
        for link in (link for link in new_links if link.reusable):
            allocation.sell_reusable(code_id=link.code_id, now=now)
        Fulfilment.objects.create(
            order=order, delivered_codes=len(single_use) + sum(link.reusable for link in new_links),
            reallocated_codes=reallocated,
        )  # fmt: skip
        if manual:
            transition(order, source=[Status.PAID], target=Status.PROCESSING, kind="awaiting_merchant")
            outcome = DeliveryOutcome.PROCESSING
        else:
            transition(order, source=[Status.PAID], target=Status.DELIVERED, kind="delivered", delivered_at=now)
            outcome = DeliveryOutcome.DELIVERED
        if reallocated:
            record_event(order, kind="codes_reallocated", data={"count": reallocated})
        send_stock_changed(sku_ids=[item.sku_id for item in automatic])
        if automatic:
            from orders import emails

            # Sent by the worker already running this delivery, once the codes are committed, and
            # outside every row lock: a Celery task of its own cost ~7 ms of CPU an order for no
            # gain. The send claims delivery_email_sent_at first, so it happens at most once; a
            # mail server error is logged (robust) and never undoes or repeats the delivery.
            order_pk = order.pk
            transaction.on_commit(lambda: emails.send_delivery_email(order_id=order_pk), robust=True)
        if outcome == DeliveryOutcome.DELIVERED and order.sms_opt_in and order.phone:
            from orders import sms

            # The same way, claimed before sending (at most once); only a delivered order is texted.
            sms_order_pk = order.pk
            transaction.on_commit(lambda: sms.send_delivery_sms(order_id=sms_order_pk), robust=True)
    return outcome


def _cannot_deliver(order: Order, item: OrderItem) -> str:
    """Out of stock after a late payment: free what was held, refund the buyer, say why.

    Runs inside deliver_order's transaction, which it ends by returning; the refund itself is
    requested on commit (payments talks to the gateway outside any row lock)."""
    _release_reserved_codes(order)
    transition(
        order,
        source=[Status.PAID],
        target=Status.REFUNDING,
        kind="delivery_failed",
        note=f"out of stock: {item.product_title} · {item.sku_label}",
        data={"sku_id": item.sku_id},
        refunding_reason=Order.RefundingReason.OUT_OF_STOCK,
    )
    # Payments refunds it once this commits, retried until under way (a Celery task), and its
    # stranded-refund sweep finds any order left in `refunding` without a refund.
    payment_port.get().refund_in_full_on_commit(order_id=order.pk, reason=payment_port.RefundReason.OUT_OF_STOCK)
    return DeliveryOutcome.REFUNDING


def complete_manual_delivery(*, order: Order, results: dict[int, str], actor) -> bool:
    """The merchant reports the manual items done (results by order item id): processing → delivered."""
    with transaction.atomic():
        locked = locks.lock_order(order.pk)
        if locked.status != Status.PROCESSING:
            return False
        for item in locked.items.exclude(delivery_mode=Product.DeliveryMode.AUTOMATIC):
            item.manual_result = results.get(item.pk, item.manual_result)
            item.save(update_fields=["manual_result"])
        done = transition(
            locked, source=[Status.PROCESSING], target=Status.DELIVERED, kind="delivered", actor=actor,
            delivered_at=timezone.now(),
        )  # fmt: skip
        if done:
            from orders.tasks import send_delivery_email, send_delivery_sms

            enqueue_on_commit(send_delivery_email, order_id=locked.pk)
            if locked.sms_opt_in and locked.phone:
                enqueue_on_commit(send_delivery_sms, order_id=locked.pk)
    return done


# -- refunds (called by payments when money went back) ----------------------------------------------------


def record_refund(*, order_id: int, amount_fen: int, note: str = "") -> None:
    """Money went back to the buyer: count it, close the order when all of it did, and reverse the
    points in proportion (orders/loyalty.py)."""
    with transaction.atomic():
        order = locks.lock_order(order_id)
        before_fen = order.refunded_fen
        Order.objects.filter(pk=order.pk).update(refunded_fen=F("refunded_fen") + amount_fen)
        order.refresh_from_db(fields=["refunded_fen"])
        record_event(order, kind="refunded", note=note, data={"amount_fen": amount_fen})
        # Points earned are taken back and points spent given back in proportion; the level follows.
        loyalty.refunded(order, before_fen=before_fen, after_fen=order.refunded_fen)
        if order.kind == Order.Kind.MEMBERSHIP:
            from orders import membership

            # The refunded share of the period this order bought comes off the membership's end.
            if taken := membership.revoke_for_refund(order):
                record_event(order, kind="membership_shortened", data={"seconds": taken})
        signals.order_refunded.send(sender=Order, order=order, before_fen=before_fen, after_fen=order.refunded_fen)
        if order.refunded_fen >= order.total_fen:
            transition(
                order, source=[Status.REFUNDING, Status.DELIVERED, Status.PAID, Status.PROCESSING],
                target=Status.REFUNDED, kind="closed_refunded", closed_at=timezone.now(),
            )  # fmt: skip
        elif order.status == Status.REFUNDING:
            # A partial refund (after-sales) leaves the order delivered, with refunded_fen recorded.
            transition(order, source=[Status.REFUNDING], target=Status.DELIVERED, kind="partially_refunded")


# -- buyer views ------------------------------------------------------------------------------------------


RESENDABLE = (Status.DELIVERED, Status.PROCESSING)  # orders whose codes e-mail may go out again


def resend_delivery_emails(*, orders, actor) -> tuple[int, int]:
    """Send the codes e-mail of delivered orders again (the same codes), recorded on each order.
    Returns (queued, skipped: nothing delivered yet)."""
    from orders.tasks import send_delivery_email

    selected = list(orders.order_by("pk"))
    eligible = [order for order in selected if order.status in RESENDABLE]
    with transaction.atomic():
        for order in eligible:
            record_event(order, kind=OrderEvent.Kind.DELIVERY_EMAIL_RESENT, actor=actor)
            enqueue_on_commit(send_delivery_email, order_id=order.pk, again=True)
    return len(eligible), len(selected) - len(eligible)


def mark_codes_viewed(*, order: Order) -> None:
    """Remember when the buyer first saw the codes (after-sales depends on it)."""
    if order.codes_first_viewed_at is None:
        now = timezone.now()
        if Order.objects.filter(pk=order.pk, codes_first_viewed_at__isnull=True).update(codes_first_viewed_at=now):
            order.codes_first_viewed_at = now
            record_event(order, kind="codes_viewed")


# -- claiming guest orders into an account ----------------------------------------------------------------


def claim_guest_orders(*, user, email: str) -> int:
    """Give ``user`` the guest orders (no buyer) placed with ``email``, an address the caller has
    seen verified for that user (orders/receivers.py: allauth's signals). Returns how many.

    Checkout stores the e-mail stripped and lower-cased, so an exact match on the normalised
    address is case-insensitive and uses the (email, status) index. Each order is taken by one
    conditional UPDATE (``WHERE buyer IS NULL``), in ascending id (the lock order of
    orders/locks.py): two confirmations at once, or a claim racing another, take each order once,
    and an order with a buyer is never moved. Once claimed, the order counts towards the buyer's
    ``max_per_buyer`` (the same person bought it) and the query secret no longer finds it
    (:func:`find_guest_orders` looks at guest orders only); orders/access.py lets the browser that
    placed it keep it. :func:`claim_guest_orders_by_phone` is its twin for a verified number."""
    normalised = email.strip().lower()
    if not normalised:
        return 0
    return _claim(user=user, orders=Order.objects.filter(buyer__isnull=True, email=normalised), via="email")


def claim_guest_orders_by_phone(*, user, phone: str) -> int:
    """Give ``user`` the guest orders placed with ``phone``, a number the caller has seen verified
    for that user (accounts' ``phone_verified`` signal, and at every sign-in for the account's
    verified number). Checkout stores numbers in E.164 and migration 0005 rewrote older ones, so the
    number is normalised here and matched exactly, on the partial index of guest orders' phones."""
    number = phones.normalise(phone)
    if not number:
        return 0
    return _claim(user=user, orders=Order.objects.filter(buyer__isnull=True, phone=number), via="phone")


def _claim(*, user, orders, via: str) -> int:
    if user is None or not user.is_authenticated:
        return 0
    candidates = list(orders.order_by("pk").values_list("pk", flat=True))
    claimed = 0
    with transaction.atomic():
        for order_id in candidates:
            if not Order.objects.filter(pk=order_id, buyer__isnull=True).update(buyer=user):
                continue  # claimed by a concurrent confirmation
            order = Order.objects.get(pk=order_id)
            record_event(order, kind=OrderEvent.Kind.CLAIMED, actor=user, data={"via": via})
            claimed += 1
    if claimed:
        logger.info("user %s claimed %d guest orders by a verified %s", user.pk, claimed, via)
    return claimed


# -- periodic --------------------------------------------------------------------------------------------


def expire_overdue_orders(*, batch_size: int = 500) -> int:
    """Close unpaid orders past their deadline and put their codes back (beat, every minute).

    Not needed for correctness — allocation already treats those codes as free — but it keeps
    the order list and stock counts honest. Safe to run concurrently (SKIP LOCKED)."""
    expired = 0
    while True:
        with transaction.atomic():
            batch = locks.lock_free_orders(
                Order.objects.filter(status=Status.PENDING_PAYMENT, reserved_until__lte=timezone.now()),
                limit=batch_size,
            )
            for order in batch:
                if transition(
                    order, source=[Status.PENDING_PAYMENT], target=Status.EXPIRED, kind="expired",
                    closed_at=timezone.now(),
                ):  # fmt: skip
                    _release_reserved_codes(order)
                    loyalty.unpaid_closed(order)  # the points it used go back
                    signals.order_released.send(sender=Order, order=order)
                    expired += 1
        if len(batch) < batch_size:
            return expired


def redeliver_stuck_orders(*, older_than_seconds: int = 60) -> int:
    """Re-queue delivery of orders paid more than a minute ago and still not delivered (broker was
    down, a worker died mid-task). Delivery is idempotent, so a spurious re-queue is harmless."""
    from orders.tasks import deliver_order as deliver_task

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stuck = list(Order.objects.filter(status=Status.PAID, paid_at__lt=cutoff).values_list("pk", flat=True)[:1000])
    for order_id in stuck:
        deliver_task.delay(order_id=order_id)
    if stuck:
        logger.warning("re-queued delivery of %d paid orders", len(stuck))
    return len(stuck)
