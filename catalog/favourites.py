"""Favourites (/me/favourites/) and their price-drop and back-in-stock e-mails.

Plain functions, keyword-only, one transaction each (docs/ARCHITECTURE.md); the views in
``catalog/favourite_views.py`` and the tasks in ``catalog/tasks.py`` call these.

A favourite is one user and one product (unique). Shoppers add and remove them on product and list
pages; a guest's click is remembered in the session (the POST carried a CSRF token, so it is the
guest's own intent) and added by :func:`add_remembered` when they sign in or sign up.

State of a favourite's product, as the list shows it and the notices compare it
--------------------------------------------------------------------------------
* **price**: the lowest price of the product's active SKUs;
* **off sale**: not listed, its merchant suspended, or no active SKU;
* **sold out**: on sale, delivered from card codes, and no active SKU has a code for sale now;
* **in stock**: otherwise (manual and upstream delivery do not draw on codes).

:func:`with_state` annotates a queryset of favourites with all of it in the one query.

Notices
-------
Opt-in per favourite (``Favourite.notify``). Who gets notices is one function,
:func:`wants_notices_q` — a user-wide "price drops" preference joins it there. Each favourite
remembers what its shopper was last told (``seen_price_fen``, ``seen_in_stock``, set to the current
state when notices are switched on). :func:`check_favourites` compares the products' state now with
it, under the favourites' row locks: cheaper than seen → a price drop, in stock when seen sold out
→ back in stock; the seen state then follows the current one (up as well as down: a price that
went up and comes down again is a drop). The changes found for one user in one check become one
:class:`~catalog.models.FavouriteNotice`, one e-mail, sent by a task queued on commit.

Triggers are coalesced like the low-stock checks (catalog/stock.py): every stock change
(``catalog.signals.stock_changed``: imports, manual codes, releases, sales, listing) and every saved
SKU (a new price) queues at most one check per SKU per ``FAVOURITE_CHECK_DELAY`` seconds. A
100,000-code import commits once and sends one signal; repeated saves within the delay are one
check; and a check that finds nothing new — the seen state already says so — sends nothing. The
periodic :func:`sweep_favourites` catches what no signal reported (reservations that expired, a
price changed by a bulk update) and queues notices whose task was lost.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import Merchant, User
from catalog.allocation import for_sale_parts
from catalog.models import CardCode, Favourite, FavouriteNotice, Product, Sku
from kameng.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

# The session key under which a guest's favourite clicks wait for sign-in (product ids).
SESSION_KEY = "favourites_pending"
SESSION_MAX = 20
# How old an unsent notice must be before the sweep queues its e-mail again.
RESEND_AFTER = datetime.timedelta(minutes=10)


class State:
    IN_STOCK = "in_stock"
    SOLD_OUT = "sold_out"
    OFF_SALE = "off_sale"


class Kind:
    PRICE_DROP = "price_drop"
    BACK_IN_STOCK = "back_in_stock"


# --- Reads --------------------------------------------------------------------------------------
def with_state(queryset: QuerySet[Favourite], *, now=None) -> QuerySet[Favourite]:
    """Favourites annotated with ``price_fen`` (lowest active SKU price, None without one),
    ``on_sale`` and ``in_stock`` — correlated subqueries of the one query, each stopping early
    (an index scan for the lowest price, EXISTS for a code), so the cost does not grow with SKUs or
    stock."""
    now = now or timezone.now()
    product = OuterRef("product_id")
    price = Subquery(Sku.objects.filter(product=product, is_active=True).order_by("price_fen").values("price_fen")[:1])
    codes = CardCode.objects.filter(sku__product=product, sku__is_active=True)
    available, expired = for_sale_parts(now=now)
    on_sale = Q(
        product__status=Product.Status.LISTED,
        product__merchant__status=Merchant.Status.ACTIVE,
        price_fen__isnull=False,
    )
    has_codes = (
        ~Q(product__delivery_mode=Product.DeliveryMode.AUTOMATIC)
        | Exists(codes.filter(available))
        | Exists(codes.filter(expired))
    )
    return queryset.annotate(price_fen=price).annotate(
        on_sale=ExpressionWrapper(on_sale, output_field=BooleanField()),
        in_stock=ExpressionWrapper(on_sale & has_codes, output_field=BooleanField()),
    )


def state_of(favourite: Favourite) -> str:
    """In stock / sold out / off sale, from a favourite annotated by :func:`with_state`."""
    if not favourite.on_sale:  # type: ignore[attr-defined]
        return State.OFF_SALE
    return State.IN_STOCK if favourite.in_stock else State.SOLD_OUT  # type: ignore[attr-defined]


def for_page(*, user) -> QuerySet[Favourite]:
    """The user's favourites, newest first, with their product, category and current state (one
    query per page, whatever the number of favourites)."""
    queryset = Favourite.objects.filter(user=user).select_related("product__category").order_by("-created_at", "-id")
    return with_state(queryset)


def favourite_ids(*, user, product_ids: Iterable[int]) -> set[int]:
    """Which of these products the user has favourited (one query; none for a guest)."""
    ids = {int(pk) for pk in product_ids}
    if not ids or not user.is_authenticated:
        return set()
    return set(Favourite.objects.filter(user=user, product_id__in=ids).values_list("product_id", flat=True))


def count(*, user) -> int:
    return Favourite.objects.filter(user=user).count()


# --- Use cases ----------------------------------------------------------------------------------
def add(*, user, product_id: int) -> bool:
    """Favourite a listed product. Returns whether it was new; raises Product.DoesNotExist for a
    product that is not listed (a delisted one may still be removed)."""
    product = Product.objects.listed().get(pk=product_id)
    try:
        with transaction.atomic():
            _favourite, created = Favourite.objects.get_or_create(user=user, product=product)
    except IntegrityError:  # a double click committed between our read and our insert
        return False
    return created


def remove(*, user, product_id: int) -> bool:
    """Forget a favourite. Returns whether there was one."""
    deleted, _by_model = Favourite.objects.filter(user=user, product_id=product_id).delete()
    return bool(deleted)


def set_notify(*, user, product_id: int, notify: bool, language: str = "") -> bool:
    """Switch a favourite's e-mails on or off. Switching on starts from what the shopper sees now
    (its price and stock), so only later changes are announced. Returns False when there is no such
    favourite."""
    with transaction.atomic():
        favourite = with_state(Favourite.objects.filter(user=user, product_id=product_id)).first()
        if favourite is None:
            return False
        fields: dict[str, object] = {"notify": notify}
        if notify:
            fields.update(
                language=language or settings.LANGUAGE_CODE,
                seen_price_fen=favourite.price_fen,  # type: ignore[attr-defined]
                seen_in_stock=favourite.in_stock,  # type: ignore[attr-defined]
            )
        Favourite.objects.filter(pk=favourite.pk).update(**fields)
        if notify:  # asking for a favourite's e-mails is consent to price-drop e-mails
            User.objects.filter(pk=user.pk, notify_price_drops=False).update(notify_price_drops=True)
    return True


def remember_for_sign_in(*, session, product_id: int) -> None:
    """A guest asked to favourite a product: keep it until they sign in (see :func:`add_remembered`)."""
    pending = [pk for pk in session.get(SESSION_KEY, []) if pk != product_id]
    session[SESSION_KEY] = ([*pending, product_id])[-SESSION_MAX:]


def add_remembered(*, user, session) -> int:
    """Add the favourites a guest clicked before signing in (receiver of ``user_logged_in``, which
    allauth's sign-up sends too). Products no longer listed are skipped. Returns how many were added."""
    pending = session.pop(SESSION_KEY, None) or []
    added = 0
    for product_id in pending:
        try:
            added += add(user=user, product_id=int(product_id))
        except (Product.DoesNotExist, TypeError, ValueError):
            continue
    return added


# --- Notices ------------------------------------------------------------------------------------
def wants_notices_q() -> Q:
    """Which favourites get e-mails, the one place that decides: the favourite's own switch and the
    user-wide "price drops" setting of /me/settings/ (switching a favourite's e-mails on turns that
    on; switching it off there silences every favourite at once)."""
    return Q(notify=True, user__is_active=True, user__notify_price_drops=True)


@dataclass(frozen=True)
class Change:
    kind: str
    product_id: int
    old_fen: int | None
    new_fen: int | None


def changes_of(favourite: Favourite) -> list[Change]:
    """What to tell about one favourite annotated by :func:`with_state`, compared with what its
    shopper last saw."""
    price, on_sale, in_stock = favourite.price_fen, favourite.on_sale, favourite.in_stock  # type: ignore[attr-defined]
    found = []
    if in_stock and not favourite.seen_in_stock:
        found.append(Change(Kind.BACK_IN_STOCK, favourite.product_id, favourite.seen_price_fen, price))
    elif on_sale and price is not None and favourite.seen_price_fen is not None and price < favourite.seen_price_fen:
        found.append(Change(Kind.PRICE_DROP, favourite.product_id, favourite.seen_price_fen, price))
    return found


def check_favourites(*, product_ids: Iterable[int], now: datetime.datetime | None = None) -> list[int]:
    """Compare these products' state with what the shoppers who want notices last saw; write one
    notice per user with changes and queue its e-mail on commit. Idempotent: the seen state moves
    in the same transaction, so a second check finds nothing. Returns the new notices' ids."""
    ids = sorted({int(pk) for pk in product_ids})
    if not ids:
        return []
    with transaction.atomic():
        favourites = list(
            with_state(Favourite.objects.filter(wants_notices_q(), product_id__in=ids), now=now)
            .select_for_update(of=("self",))
            .order_by("pk")
        )
        by_user: dict[int, list[Change]] = defaultdict(list)
        language: dict[int, str] = {}
        updated = []
        for favourite in favourites:
            changes = changes_of(favourite)
            if changes:
                by_user[favourite.user_id] += changes
                language.setdefault(favourite.user_id, favourite.language)
            seen_price = favourite.price_fen if favourite.on_sale else favourite.seen_price_fen  # type: ignore[attr-defined]
            if (seen_price, favourite.in_stock) != (favourite.seen_price_fen, favourite.seen_in_stock):  # type: ignore[attr-defined]
                favourite.seen_price_fen, favourite.seen_in_stock = seen_price, favourite.in_stock  # type: ignore[attr-defined]
                updated.append(favourite)
        Favourite.objects.bulk_update(updated, ["seen_price_fen", "seen_in_stock"])
        notices = FavouriteNotice.objects.bulk_create(
            FavouriteNotice(
                user_id=user_id,
                language=language[user_id] or settings.LANGUAGE_CODE,
                items=[
                    {"product": c.product_id, "kind": c.kind, "old_fen": c.old_fen, "new_fen": c.new_fen}
                    for c in changes
                ],
            )
            for user_id, changes in sorted(by_user.items())
        )
        for notice in notices:
            _queue_notice(notice.pk)
    return [notice.pk for notice in notices]


def _queue_notice(notice_id: int) -> None:
    from catalog.tasks import send_favourite_notice

    enqueue_on_commit(send_favourite_notice, notice_id=notice_id)


def _pending_key(sku_id: int) -> str:
    return f"catalog:favourite-check-pending:{sku_id}"


def on_catalog_changed(sender=None, *, sku_ids, **kwargs) -> None:
    """Receiver of ``stock_changed`` and of SKU saves: queue a check of these SKUs' products,
    coalesced per SKU (at most one pending per ``FAVOURITE_CHECK_DELAY``), after the current
    transaction commits. Without the cache the check is queued anyway."""
    from catalog.tasks import check_favourites as task

    delay = settings.FAVOURITE_CHECK_DELAY
    pending = []
    for sku_id in sorted(set(sku_ids)):
        try:
            fresh = cache.add(_pending_key(sku_id), 1, delay + 60)
        except Exception:  # a cache outage must not stop the check
            logger.warning("favourite check of SKU %s queued without coalescing: cache unavailable", sku_id)
            fresh = True
        if fresh:
            pending.append(sku_id)
    if pending:
        transaction.on_commit(
            lambda: task.apply_async(kwargs={"sku_ids": pending}, countdown=delay or None), robust=True
        )


def on_sku_saved(sender, *, instance: Sku, **kwargs) -> None:
    """``post_save`` of Sku: a new price (or the SKU back on sale) may be news to someone. Like
    ``stock_changed``, acted on once the save committed (a rolled-back save marks nothing pending)."""
    sku_id = instance.pk
    transaction.on_commit(lambda: on_catalog_changed(sku_ids=[sku_id]), robust=True)


def check_skus(*, sku_ids: list[int]) -> list[int]:
    """The task's body: clear the pending marks first (later changes queue a check of their own),
    then check the products of these SKUs."""
    try:
        cache.delete_many([_pending_key(sku_id) for sku_id in sku_ids])
    except Exception:  # the keys expire by themselves
        logger.warning("could not clear pending favourite checks: cache unavailable")
    product_ids = set(Sku.objects.filter(pk__in=sku_ids).values_list("product_id", flat=True))
    watched = Favourite.objects.filter(wants_notices_q(), product_id__in=product_ids)
    return check_favourites(product_ids=watched.values_list("product_id", flat=True).distinct())


def sweep_favourites(*, now: datetime.datetime | None = None, chunk: int = 500) -> list[int]:
    """Periodic: check the products whose watched favourites disagree with their state now (one
    set-based query finds them, usually none), then queue notices whose e-mail never went out."""
    now = now or timezone.now()
    disagreeing = (
        with_state(Favourite.objects.filter(wants_notices_q()), now=now)
        .filter(
            Q(in_stock=True, seen_in_stock=False)
            | Q(in_stock=False, seen_in_stock=True)
            | Q(on_sale=True, seen_price_fen__isnull=False, price_fen__lt=F("seen_price_fen"))
        )
        .values_list("product_id", flat=True)
        .distinct()
    )
    product_ids = sorted(set(disagreeing))
    created = []
    for start in range(0, len(product_ids), chunk):
        created += check_favourites(product_ids=product_ids[start : start + chunk], now=now)
    stale = FavouriteNotice.objects.filter(sent_at__isnull=True, created_at__lt=now - RESEND_AFTER)
    for notice_id in stale.values_list("pk", flat=True):
        _queue_notice(notice_id)
    return created


def send_notice(*, notice_id: int) -> bool:
    """E-mail a notice at most once, in the shopper's language. Returns whether this call sent it.

    Claims ``sent_at`` before sending (like the low-stock alerts): a repeated or concurrent task
    sends nothing; a crash between claim and send loses this e-mail, never duplicates it."""
    claimed = FavouriteNotice.objects.filter(pk=notice_id, sent_at__isnull=True).update(sent_at=timezone.now())
    if not claimed:
        return False
    notice = FavouriteNotice.objects.select_related("user").get(pk=notice_id)
    if not notice.user.is_active or not notice.user.email:
        return False
    products = {p.pk: p for p in Product.objects.filter(pk__in=[item["product"] for item in notice.items])}
    language = notice.language or settings.LANGUAGE_CODE
    lines = [
        {
            "kind": item["kind"],
            "product": products[item["product"]],
            "title": products[item["product"]].display_title(language),
            "old_fen": item["old_fen"],
            "new_fen": item["new_fen"],
            "url": settings.SITE_URL + products[item["product"]].get_absolute_url(),
        }
        for item in notice.items
        if item["product"] in products
    ]
    if not lines:
        return False
    with translation.override(language):
        context = {
            "user": notice.user,
            "lines": lines,
            "shop_name": settings.SHOP_NAME,
            "site_url": settings.SITE_URL,
            "favourites_url": settings.SITE_URL + reverse("accounts:favourites"),
        }
        subject = " ".join(render_to_string("catalog/email/favourite_notice_subject.txt", context).split())
        text = render_to_string("catalog/email/favourite_notice.txt", context)
        html = render_to_string("catalog/email/favourite_notice.html", context)
    message = EmailMultiAlternatives(subject, text, None, [notice.user.email])
    message.attach_alternative(html, "text/html")
    message.send()
    return True
