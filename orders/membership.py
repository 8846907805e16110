"""Annual membership (年度会员): a paid membership bought like any order, a member discount, priority.

* **Plans** (``MembershipPlan``) are defined by operators in admin: name, price, duration in days,
  discount percentage, on sale or not.
* **Buying**: :func:`place_membership` creates an order of kind ``member`` — no items, no stock,
  a buyer and the plan's price, the plan snapshotted in ``Order.pricing`` — paid through Alipay,
  WeChat Pay, the sandbox or the wallet exactly like a goods order (same notifications, lost-payment
  queries, expiry, late payments). ``deliver_order`` calls :func:`grant` instead of handing out
  codes: the buyer's ``Membership`` starts now, or — bought before it expired — is extended from its
  current end. One ``MembershipGrant`` per order (the order is the reference), so a grant asked for
  twice happens once. Membership orders are never split to merchants: the ledger moves their money
  from ``unallocated`` to ``platform_fee`` (payments/settlement.py ``post_memberships``).
* **Refunds** (operators, from the order admin): :func:`revoke_for_refund` takes back the refunded
  share of the period that order bought — ``duration × refunded / paid``, cumulative over partial
  refunds — from the *end* of the membership, never earlier than now. A full refund of the only
  period ends the membership at once; a refund of a renewal bought early shortens the membership
  by that renewal's length and leaves the period already running. The discount taken on orders
  while the membership ran is not clawed back.
* **Discount**: the pricing rule ``annual_membership`` (order 110) gives an active member the
  discount percentage of the plan last bought on every line, funded by the platform. It does not
  stack with the member-level price (rule ``member_level``, order 100): both are offers of the pricing
  engine's ``UNIT_PRICE`` group, so per line the buyer gets the better of the two.
* **Priority**: orders of active members are sorted first and marked in the manual-delivery and
  after-sales queues in admin (:func:`is_member_expr`).
* **Renewal reminder**: :func:`send_renewal_reminders` (beat, daily) e-mails members
  ``MEMBERSHIP_REMINDER_DAYS`` before expiry, once per period (``Membership.reminded_for`` is claimed
  with a conditional update), in their language, with a link to /me/membership/.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from kameng.money import round_half_up
from orders import locks, pricing
from orders.models import Fulfilment, Membership, MembershipGrant, MembershipPlan, Order, OrderEvent

logger = logging.getLogger(__name__)

RULE = "annual_membership"
RULE_ORDER = 110


class MembershipError(Exception):
    pass


# -- reads -----------------------------------------------------------------------------------------------


def active_membership(user, *, now=None) -> Membership | None:
    """The user's membership if it runs at ``now`` (one query; none for anonymous users)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    now = now or timezone.now()
    return Membership.objects.filter(user=user, ends_at__gt=now).select_related("plan").first()


def is_member_expr(user_ref: str, *, now=None) -> Exists:
    """``Exists`` of an active membership of the user at ``user_ref`` (admin queues sort on it)."""
    return Exists(Membership.objects.filter(user_id=OuterRef(user_ref), ends_at__gt=now or timezone.now()))


def days_left(ends_at, now) -> int:
    """Whole days left, rounded up (39 days and 2 hours is "40 days left"); 0 once expired."""
    seconds = (ends_at - now).total_seconds()
    return max(0, -int(-seconds // 86_400))


def plans_on_sale():
    return MembershipPlan.objects.filter(is_active=True)


def unit_discount_fen(price_fen: int, percent: int) -> int:
    """The member discount on one unit, half up to the fen (the product page shows this)."""
    return round_half_up(Decimal(price_fen) * percent / 100)


# -- buying ----------------------------------------------------------------------------------------------


@dataclass
class PlacedMembership:
    order: Order
    created: bool


def place_membership(
    *, buyer, plan_id: int, idempotency_key: str, client_ip: str | None = None, language: str = "zh-hans"
) -> PlacedMembership:
    """A pending order for ``plan_id`` (on sale) by a signed-in buyer; same key, same order."""
    if buyer is None or not buyer.is_authenticated:
        raise MembershipError(_("Sign in to buy a membership."))
    existing = Order.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return PlacedMembership(order=existing, created=False)
    plan = plans_on_sale().filter(pk=plan_id).first()
    if plan is None:
        raise MembershipError(_("This membership plan is not on sale."))
    from orders.services import new_order_number

    snapshot = {
        "membership_plan_id": plan.pk,
        "plan_name": plan.name,
        "plan_name_en": plan.name_en,
        "duration_days": plan.duration_days,
        "discount_percent": plan.discount_percent,
    }
    try:
        with transaction.atomic():
            order = Order.objects.create(
                number=new_order_number(), kind=Order.Kind.MEMBERSHIP, buyer=buyer, email=buyer.email,
                subtotal_fen=plan.price_fen, total_fen=plan.price_fen, idempotency_key=idempotency_key,
                reserved_until=timezone.now() + timedelta(minutes=settings.ORDER_RESERVATION_MINUTES),
                client_ip=client_ip, language=language, pricing=snapshot,
            )  # fmt: skip
            OrderEvent.objects.create(order=order, to_status=order.status, kind="placed", actor=buyer, data=snapshot)
    except IntegrityError:
        existing = Order.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return PlacedMembership(order=existing, created=False)
    return PlacedMembership(order=order, created=True)


def grant(order: Order, now) -> MembershipGrant:
    """Start or extend the buyer's membership for a paid membership order (caller holds the order
    lock; the ``Membership`` row is locked after it). Once per order."""
    already = MembershipGrant.objects.filter(order=order).first()
    if already is not None:
        return already
    if order.buyer_id is None:  # the database refuses it (order_membership_has_buyer_and_amount)
        raise ValueError(f"membership order {order.number} has no buyer")
    plan = MembershipPlan.objects.get(pk=order.pricing["membership_plan_id"])
    days = int(order.pricing["duration_days"])
    percent = int(order.pricing["discount_percent"])
    membership = locks.lock_membership(order.buyer_id)
    if membership is None:
        # The buyer's first: two memberships paid at once both get here. ON CONFLICT DO NOTHING lets
        # the second wait for the first's row instead of failing, then both extend it in turn.
        Membership.objects.bulk_create(
            [Membership(user_id=order.buyer_id, plan=plan, discount_percent=percent, started_at=now, ends_at=now)],
            ignore_conflicts=True,
        )
        membership = locks.lock_membership(order.buyer_id)
        assert membership is not None
    renewing = membership.ends_at > now
    starts_at = membership.ends_at if renewing else now
    ends_at = starts_at + timedelta(days=days)
    Membership.objects.filter(pk=membership.pk).update(
        plan=plan, discount_percent=percent, ends_at=ends_at, **({} if renewing else {"started_at": now})
    )
    return MembershipGrant.objects.create(
        order=order, membership=membership, plan=plan, starts_at=starts_at, ends_at=ends_at
    )


def deliver(order: Order, now) -> str:
    """``deliver_order`` for a membership order (caller holds the order lock, status ``paid``)."""
    from orders.services import DeliveryOutcome, transition

    grant(order, now)
    Fulfilment.objects.create(order=order, delivered_codes=0, reallocated_codes=0)
    transition(
        order, source=[Order.Status.PAID], target=Order.Status.DELIVERED, kind="membership_granted", delivered_at=now
    )
    return DeliveryOutcome.DELIVERED


def revoke_for_refund(order: Order, now=None) -> int:
    """Shorten the membership by the refunded share of what ``order`` granted (caller holds the
    order lock, ``order.refunded_fen`` up to date). Cumulative, so it may run after every refund;
    returns the seconds taken back by this call."""
    grant_row = MembershipGrant.objects.filter(order=order).select_related("membership").first()
    if grant_row is None or order.total_fen <= 0:
        return 0
    now = now or timezone.now()
    length = int((grant_row.ends_at - grant_row.starts_at).total_seconds())
    target = length * min(order.refunded_fen, order.total_fen) // order.total_fen
    extra = target - grant_row.revoked_seconds
    if extra <= 0:
        return 0
    membership = locks.lock_membership(grant_row.membership.user_id)
    if membership is not None and membership.ends_at > now:  # an expired membership has nothing left to take
        Membership.objects.filter(pk=membership.pk).update(
            ends_at=max(now, membership.ends_at - timedelta(seconds=extra))
        )
    MembershipGrant.objects.filter(pk=grant_row.pk).update(revoked_seconds=F("revoked_seconds") + extra)
    return extra


# -- the member discount (a pricing rule) ----------------------------------------------------------------


@pricing.register_rule(RULE, order=RULE_ORDER, group=pricing.UNIT_PRICE)
def member_discount(quote: pricing.Quote) -> None:
    """An active member pays ``discount_percent`` less on every line, funded by the platform. It is
    an offer of the pricing engine's ``UNIT_PRICE`` group, with the member-level price: per line the
    better of the two applies, never both."""
    context = quote.context
    # ``as_membership``: the operators' price preview (orders/price_preview.py) prices for a member.
    membership = context["as_membership"] if "as_membership" in context else active_membership(context.get("buyer"))
    if membership is None or not membership.discount_percent:
        return
    for line in quote.lines:
        wanted = unit_discount_fen(line.unit_price_fen, membership.discount_percent) * line.quantity
        if wanted > 0:
            label = _("Annual member price")  # in the buyer's language, stored with the breakdown
            quote.add(pricing.Adjustment(RULE, label, wanted, funded_by="platform", sku_id=line.sku.pk))


# -- renewal reminders -----------------------------------------------------------------------------------


def reminders_due(*, now=None):
    """Memberships ending within ``MEMBERSHIP_REMINDER_DAYS`` not yet reminded for this end."""
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.MEMBERSHIP_REMINDER_DAYS)
    return (
        Membership.objects.filter(ends_at__gt=now, ends_at__lte=horizon)
        .exclude(reminded_for=F("ends_at"))
        .select_related("user", "plan")
        .order_by("ends_at", "pk")
    )


def send_renewal_reminder(*, membership_id: int, now=None) -> bool:
    """E-mail one reminder for the membership's current end, at most once (claimed first)."""
    now = now or timezone.now()
    membership = Membership.objects.select_related("user").filter(pk=membership_id).first()
    if membership is None or membership.ends_at <= now:
        return False
    claimed = (
        Membership.objects.filter(pk=membership.pk, ends_at=membership.ends_at)
        .exclude(reminded_for=membership.ends_at)
        .update(reminded_for=membership.ends_at)
    )
    if not claimed:
        return False
    user = membership.user
    language = _language_of(user)
    with translation.override(language):
        context = {
            "user": user,
            "ends_at": membership.ends_at,
            "days_left": days_left(membership.ends_at, now),
            "renew_url": settings.SITE_URL.rstrip("/") + reverse("accounts:membership"),
            "shop_name": settings.SHOP_NAME,
        }
        subject = render_to_string("orders/email/membership_reminder_subject.txt", context).strip()
        text = render_to_string("orders/email/membership_reminder.txt", context)
        html = render_to_string("orders/email/membership_reminder.html", context)
    message = EmailMultiAlternatives(subject, text, None, [user.email])
    message.attach_alternative(html, "text/html")
    message.send()
    return True


def _language_of(user) -> str:
    """The language of the buyer's latest order (what they shop in), else the shop's default."""
    latest = Order.objects.filter(buyer=user).order_by("-created_at").values_list("language", flat=True).first()
    return latest or settings.LANGUAGE_CODE


def send_renewal_reminders(*, now=None, limit: int = 500) -> int:
    """Beat: queue one reminder per membership that is due (the claim in the task keeps it once)."""
    from kameng.tasks import enqueue_on_commit
    from orders.tasks import send_membership_reminder

    ids = list(reminders_due(now=now).values_list("pk", flat=True)[:limit])
    with transaction.atomic():
        for membership_id in ids:
            enqueue_on_commit(send_membership_reminder, membership_id=membership_id)
    return len(ids)
