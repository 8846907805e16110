"""The coupon wallet (券包): granting coupons to users, claiming them (领券), what a wallet holds,
trial coupons (体验券) and win-back.

* :func:`grant` puts a coupon in a user's wallet (source: claimed, trial, win-back, operator). One
  grant per (coupon, user) from every source but win-back is a database constraint, so granting a
  trial coupon twice, or two clicks of "claim" at once, give one grant.
* :func:`claim` is the shopper's "领券": a claimable, running coupon, at most ``claim_limit`` claims
  in all — taken with a conditional UPDATE of ``claimed_count`` (like ``used_count`` at checkout),
  then the grant inserted; a second claim of the same user hits the constraint and the whole claim
  rolls back, so the count never counts it. Lock order: the ``Coupon`` row, then the grant.
* A coupon marked ``holders_only`` is refused at checkout (marketing/coupons.py) to a buyer with
  no usable grant of it; every order that uses a coupon takes the buyer's oldest usable grant of it
  (a conditional UPDATE of ``order``), so the wallet shows it as used; releasing the order (expired,
  cancelled, refunded in full) gives it back.
* :func:`wallet_of` sorts a user's grants into usable / used / expired for /me/coupons/.
* Trial coupons: every coupon with ``trial_for_new_users`` is granted at sign-up
  (:func:`grant_trials`, a receiver of allauth's ``user_signed_up``); :func:`grant_to_list` grants
  one to a list of e-mails or phone numbers (the admin's "grant to users"), reporting unknown ones.
* Win-back (:func:`win_back`, the beat task ``marketing.tasks.win_back``): see
  :class:`marketing.models.WinBackProgramme`; the grant is e-mailed, and texted to users who opted in
  to promotions by SMS (``User.notify_promotions_sms``, /me/settings/) with a verified number.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts import sms
from accounts.models import User
from marketing.coupons import covers
from marketing.models import Coupon, CouponGrant, WinBackProgramme
from orders.models import Order

logger = logging.getLogger(__name__)
Source = CouponGrant.Source


class ClaimRefused(Exception):
    """Why a claim gave nothing (translated, for the shopper)."""


def _running(now) -> Q:
    return (
        Q(is_active=True)
        & (Q(starts_at__isnull=True) | Q(starts_at__lte=now))
        & (Q(ends_at__isnull=True) | Q(ends_at__gt=now))
    )


def grant(coupon: Coupon, user, *, source: str, programme: WinBackProgramme | None = None, now=None):
    """Put ``coupon`` in ``user``'s wallet; the new :class:`CouponGrant`, or None when the user
    already holds one from a source that grants once (every source but win-back)."""
    now = now or timezone.now()
    expires_at = now + timedelta(days=coupon.grant_valid_days) if coupon.grant_valid_days else None
    try:
        with transaction.atomic():
            made = CouponGrant.objects.create(
                coupon=coupon, user=user, source=source, programme=programme, expires_at=expires_at
            )
    except IntegrityError:
        return None
    return made


def claim(coupon: Coupon, user, *, now=None) -> CouponGrant:
    """The shopper's "claim": one grant per user, at most ``claim_limit`` in all (see module doc)."""
    now = now or timezone.now()
    if not (coupon.claimable and Coupon.objects.filter(_running(now), pk=coupon.pk).exists()):
        raise ClaimRefused(_("This coupon can no longer be claimed."))
    if CouponGrant.objects.filter(coupon=coupon, user=user).exclude(source=Source.WINBACK).exists():
        raise ClaimRefused(_("This coupon is already in your wallet."))
    within = Q(claim_limit__isnull=True) | Q(claimed_count__lt=F("claim_limit"))
    try:
        with transaction.atomic():
            if not Coupon.objects.filter(within, pk=coupon.pk, claimable=True).update(
                claimed_count=F("claimed_count") + 1
            ):
                raise ClaimRefused(_("All of these coupons have been claimed."))
            made = grant(coupon, user, source=Source.CLAIMED, now=now)
            if made is None:
                raise ClaimRefused(_("This coupon is already in your wallet."))  # rolls the count back
            forget_claimable()  # the strip's "all claimed" comes from the snapshot's count
    except IntegrityError:  # pragma: no cover - grant() catches its own
        raise ClaimRefused(_("This coupon is already in your wallet.")) from None
    return made


# --- what shoppers see ---------------------------------------------------------------------------------
CLAIMABLE_CACHE_KEY = "marketing:claimable:v1"
CLAIMABLE_CACHE_SECONDS = 60


def _claimable_snapshot() -> list[Coupon]:
    """Every claimable coupon not over yet (cached: product pages make no query for it when warm;
    dropped on every save or delete of a coupon and on every claim)."""
    cached = cache.get(CLAIMABLE_CACHE_KEY)
    if cached is None:
        not_over = Q(is_active=True) & (Q(ends_at__isnull=True) | Q(ends_at__gt=timezone.now()))
        coupons = Coupon.objects.filter(not_over, claimable=True)
        related = ("category", "product", "sku__product", "scope_merchant", "merchant")
        cached = list(coupons.select_related(*related).order_by("-amount_fen", "-percent", "pk"))
        cache.set(CLAIMABLE_CACHE_KEY, cached, CLAIMABLE_CACHE_SECONDS)
    return cached


def forget_claimable(**kwargs) -> None:
    """Drop the claimable coupons' snapshot now and again after the commit (a reader between the two
    would have cached the old rows)."""
    cache.delete(CLAIMABLE_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(CLAIMABLE_CACHE_KEY))


def claimable_for(skus, *, now=None) -> list[Coupon]:
    """The running claimable coupons that cover one of ``skus`` (of one product), best first. No query
    when the snapshot is warm."""
    now = now or timezone.now()
    skus = list(skus)
    if not skus:
        return []
    product = skus[0].product
    sku_ids = {sku.pk for sku in skus}

    def scoped(c: Coupon) -> bool:
        return (
            c.scope == Coupon.Scope.ALL
            or (c.scope == Coupon.Scope.CATEGORY and c.category_id == product.category_id)
            or (c.scope == Coupon.Scope.PRODUCT and c.product_id == product.pk)
            or (c.scope == Coupon.Scope.SKU and c.sku_id in sku_ids)
            or (c.scope == Coupon.Scope.MERCHANT and c.scope_merchant_id == product.merchant_id)
        )

    found = [
        c
        for c in _claimable_snapshot()
        if (c.starts_at is None or c.starts_at <= now)
        and (c.ends_at is None or c.ends_at > now)
        and (c.funded_by == Coupon.FundedBy.PLATFORM or c.merchant_id == product.merchant_id)
        and scoped(c)
        and any(covers(c, s) for s in skus)
    ]
    return [copy.copy(c) for c in found[:20]]  # the page marks its copies (claimed, sold out)


def mark_claimed(coupons: list[Coupon], user) -> None:
    """Set ``coupon.claimed`` (the user holds it) on each of ``coupons``: one query, none for a guest."""
    held: set[int] = set()
    if coupons and user is not None and user.is_authenticated:
        held = set(CouponGrant.objects.filter(user=user, coupon__in=coupons).values_list("coupon_id", flat=True))
    for coupon in coupons:
        coupon.claimed = coupon.pk in held
        coupon.sold_out = coupon.claim_limit is not None and coupon.claimed_count >= coupon.claim_limit


def usable(user, *, now=None):
    """The user's grants that can be used now: not used, not expired, their coupon running with uses left."""
    now = now or timezone.now()
    return (
        CouponGrant.objects.filter(user=user, order__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .filter(coupon__in=Coupon.objects.filter(_running(now)).filter(
            Q(total_limit__isnull=True) | Q(used_count__lt=F("total_limit"))
        ))
    )  # fmt: skip


@dataclass
class Wallet:
    usable: list = field(default_factory=list)
    used: list = field(default_factory=list)
    expired: list = field(default_factory=list)


def wallet_of(user, *, now=None) -> Wallet:
    """The user's grants in three tabs (one query). Each grant gets ``valid_until`` (the earlier of
    its own expiry and the coupon's end)."""
    now = now or timezone.now()
    grants = (
        CouponGrant.objects.filter(user=user)
        .select_related(
            "coupon__category", "coupon__product", "coupon__sku__product", "coupon__scope_merchant", "coupon__merchant"
        )
        .order_by("-granted_at", "-pk")
    )
    found = Wallet()
    for item in grants:
        coupon = item.coupon
        ends = [d for d in (item.expires_at, coupon.ends_at) if d is not None]
        item.valid_until = min(ends) if ends else None
        if item.order_id is not None:
            found.used.append(item)
        elif (
            coupon.is_active
            and (item.valid_until is None or item.valid_until > now)
            and (coupon.total_limit is None or coupon.used_count < coupon.total_limit)
        ):
            item.not_yet = coupon.starts_at is not None and coupon.starts_at > now
            found.usable.append(item)
        else:
            found.expired.append(item)
    return found


def use_url(coupon: Coupon) -> str:
    """Where "use" leads: the goods the coupon covers."""
    if coupon.scope == Coupon.Scope.PRODUCT and coupon.product_id:
        return coupon.product.get_absolute_url()
    if coupon.scope == Coupon.Scope.SKU and coupon.sku_id:
        return coupon.sku.product.get_absolute_url()
    if coupon.scope == Coupon.Scope.CATEGORY and coupon.category_id:
        return reverse("catalog:category", kwargs={"slug": coupon.category.slug})
    return reverse("catalog:home")


def for_checkout(user, skus, *, now=None) -> list[Coupon]:
    """The coupons of the user's usable grants that cover something in the cart (one query)."""
    if user is None or not user.is_authenticated:
        return []
    seen: dict[int, Coupon] = {}
    for item in usable(user, now=now).select_related("coupon").order_by("expires_at", "pk"):
        if item.coupon_id not in seen and any(covers(item.coupon, sku) for sku in skus):
            seen[item.coupon_id] = item.coupon
    return list(seen.values())


# --- trial coupons -------------------------------------------------------------------------------------
def grant_trials(user, *, now=None) -> int:
    """Every running trial coupon into a new user's wallet (sign-up)."""
    now = now or timezone.now()
    given = 0
    for coupon in Coupon.objects.filter(_running(now), trial_for_new_users=True):
        given += grant(coupon, user, source=Source.TRIAL, now=now) is not None
    return given


@dataclass
class ListResult:
    granted: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def grant_to_list(coupon: Coupon, text: str, *, source: str = Source.TRIAL) -> ListResult:
    """Grant ``coupon`` once to each user named in ``text`` (e-mails or mobile numbers, one per line
    or separated by commas, spaces or semicolons); entries matching nobody are reported back."""
    from phonenumber_field.phonenumber import to_python

    result = ListResult()
    seen: set[str] = set()
    for entry in (e.strip() for e in re.split(r"[\s,;，；]+", text or "")):
        if not entry or entry.lower() in seen:
            continue
        seen.add(entry.lower())
        if "@" in entry:
            user = User.objects.filter(email__iexact=entry).first()
        else:
            number = to_python(entry, region=settings.PHONENUMBER_DEFAULT_REGION)
            user = User.objects.filter(phone=number).first() if number and number.is_valid() else None
        if user is None:
            result.unknown.append(entry)
        elif grant(coupon, user, source=source) is None:
            result.already.append(entry)
        else:
            result.granted.append(entry)
    return result


# --- win-back ------------------------------------------------------------------------------------------
def win_back_candidates(programme: WinBackProgramme, *, now=None):
    """Users who paid at least once, not in ``idle_days``, with no grant of this programme in its period."""
    now = now or timezone.now()
    recent_grant = CouponGrant.objects.filter(
        user=OuterRef("pk"), programme=programme, granted_at__gt=now - timedelta(days=programme.period_days)
    )
    return (
        User.objects.filter(is_active=True)
        .annotate(last_paid=Max("orders__paid_at"))
        .filter(last_paid__isnull=False, last_paid__lt=now - timedelta(days=programme.idle_days))
        .exclude(Exists(recent_grant))
        .order_by("pk")
    )


def win_back(*, now=None, limit: int = 1000) -> int:
    """Grant each enabled programme's coupon to its candidates and tell them; returns grants made.
    A user is locked (FOR UPDATE) while the period is checked again, so two runs grant once."""
    now = now or timezone.now()
    made = 0
    for programme in WinBackProgramme.objects.filter(enabled=True).select_related("coupon"):
        if not Coupon.objects.filter(_running(now), pk=programme.coupon_id).exists():
            continue
        for user_id in list(win_back_candidates(programme, now=now).values_list("pk", flat=True)[:limit]):
            with transaction.atomic():
                user = User.objects.select_for_update().get(pk=user_id)
                if CouponGrant.objects.filter(
                    user=user, programme=programme, granted_at__gt=now - timedelta(days=programme.period_days)
                ).exists():
                    continue
                item = grant(programme.coupon, user, source=Source.WINBACK, programme=programme, now=now)
            if item is not None:
                made += 1
                notify(item)
    return made


def _language_of(user) -> str:
    latest = Order.objects.filter(buyer=user).order_by("-created_at").values_list("language", flat=True).first()
    return latest or settings.LANGUAGE_CODE


def notify(item: CouponGrant) -> None:
    """E-mail the grant (in the language the user shops in); text it when they opted in to
    promotions by SMS and have a verified number (and the SMS backend has the ``coupon`` template)."""
    user, coupon = item.user, item.coupon
    url = settings.SITE_URL.rstrip("/") + reverse("accounts:coupons")
    with translation.override(_language_of(user)):
        value = coupon_value(coupon)
        context = {"user": user, "coupon": coupon, "grant": item, "value": value, "url": url,
                   "shop_name": settings.SHOP_NAME}  # fmt: skip
        if user.email:
            subject = render_to_string("marketing/email/coupon_granted_subject.txt", context).strip()
            text = render_to_string("marketing/email/coupon_granted.txt", context)
            html = render_to_string("marketing/email/coupon_granted.html", context)
            message = EmailMultiAlternatives(subject, text, None, [user.email])
            message.attach_alternative(html, "text/html")
            message.send()
        if user.notify_promotions_sms and user.phone and user.phone_verified and sms.can_send("coupon"):
            try:
                sms.send(str(user.phone), "coupon", {"coupon": value, "url": url})
            except sms.SmsError:
                logger.warning("win-back SMS of grant %s not sent", item.pk)


def coupon_value(coupon: Coupon) -> str:
    """ "¥5 off" / "15% off" (translated)."""
    from kameng.money import fen_to_yuan_str

    if coupon.kind == Coupon.Kind.PERCENT:
        return _("%(percent)s%% off") % {"percent": coupon.percent}
    return _("¥%(amount)s off") % {"amount": fen_to_yuan_str(coupon.amount_fen)}


def redemptions_of(programme: WinBackProgramme) -> int:
    """Grants of the programme used by a paid order."""
    return programme.grants.filter(order__paid_at__isnull=False).count()
