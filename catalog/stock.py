"""Stock in the back office: voiding codes, listing products, and low-stock alerts.

Plain functions, keyword-only, one transaction each (see docs/ARCHITECTURE.md). The admin actions,
the Celery tasks in ``catalog/tasks.py`` and the receiver of ``catalog.signals.stock_changed`` all
call these.

Low-stock alerts
----------------
A SKU is **low** when its for-sale count (available codes, plus reserved ones whose hold has passed:
:func:`catalog.selectors.for_sale_q`) is at or below ``Sku.low_stock_threshold``. A SKU of a
reusable code (one code sold any number of times) is low only when it has no for-sale code at all.
Only SKUs that are actually on sale can be low: the SKU is active, its product is listed, delivered
automatically from card codes, and its merchant is active.

One :class:`~catalog.models.StockAlert` row is one low *episode*: :func:`check_low_stock` opens it
when a SKU becomes low and none is open, and closes it (re-arms) when the SKU is above its threshold
again — or is no longer on sale (delisting a low product ends its episode; listing it again while
still low starts a new one). The partial unique constraint ``stock_alert_one_open_per_sku`` makes
a second open alert impossible; :func:`check_low_stock` also locks the SKU rows it evaluates
(``FOR NO KEY UPDATE``, ascending id, nothing else locked in that transaction — it does not block
code inserts, which only take ``FOR KEY SHARE`` on the SKU), so evaluations of one SKU run one
after the other and the last one always sees the latest committed stock.

Opening an alert queues :func:`notify_stock_alert` (e-mail to the merchant's active staff users and
``settings.OPERATOR_EMAILS``) on commit; it claims ``notified_at`` with a conditional update, so it
sends at most once. :func:`sweep_low_stock` (periodic) catches what no signal reports — mainly
reservations that expired without being released — and re-queues notifications lost on the way.
:func:`send_low_stock_digest` (daily) lists each merchant's low SKUs with "days of cover".

Nothing here logs or returns card codes.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, Q, QuerySet, Sum, Value, When
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from accounts.models import Merchant, User
from accounts.roles import merchant_ids
from accounts.scoping import scope_queryset
from catalog.models import CardCode, Product, Sku, StockAlert
from catalog.selectors import for_sale_count
from catalog.signals import send_stock_changed
from kameng.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

CODE_SCOPE = "sku__product__merchant"
SKU_SCOPE = "product__merchant"

# Allowed product status transitions: target -> the states it may be reached from.
PRODUCT_TRANSITIONS = {
    Product.Status.LISTED: {Product.Status.DRAFT, Product.Status.DELISTED},
    Product.Status.DELISTED: {Product.Status.LISTED},
}

# How old an open, un-notified alert must be before the sweep queues its e-mail again.
RENOTIFY_AFTER = datetime.timedelta(minutes=10)
# Days of sales the digest's "days of cover" is computed from.
COVER_WINDOW_DAYS = 7
NO_SALES_WITH_STOCK = "∞"
NO_SALES_NO_STOCK = "—"


# --- Codes and products -------------------------------------------------------------------------
def void_codes(*, code_ids: Iterable[int], user: User) -> int:
    """Withdraw codes from sale (``available → void``). Returns how many were voided.

    Only codes in ``user``'s scope and still *available* at the moment of the UPDATE change:
    reserved, sold and already-void codes are left alone, even if they were available when the
    merchant selected them. Scoping resolves the ids first, so the UPDATE itself is a plain
    ``WHERE id IN (…) AND status = 'available'``, re-checked by PostgreSQL on rows that a concurrent
    checkout reserves at the same moment.
    """
    ids = sorted({int(pk) for pk in code_ids})
    if not ids:
        return 0
    with transaction.atomic():
        scoped = scope_queryset(CardCode.objects.filter(pk__in=ids), user=user, merchant_path=CODE_SCOPE)
        candidates = list(scoped.filter(status=CardCode.Status.AVAILABLE).values_list("pk", "sku_id"))
        if not candidates:
            return 0
        voided = CardCode.objects.filter(
            pk__in=[pk for pk, _sku in candidates], status=CardCode.Status.AVAILABLE
        ).update(status=CardCode.Status.VOID, voided_at=timezone.now())
        send_stock_changed(sku_ids={sku_id for _pk, sku_id in candidates})
    return voided


def set_product_status(*, product_ids: Iterable[int], status: str, user: User) -> int:
    """Move products in ``user``'s scope to ``status`` (listed or delisted). Returns how many changed.

    Allowed: draft → listed, listed → delisted, delisted → listed. Products in any other state are
    left as they are (conditional UPDATE). Low-stock alerts of the products' SKUs are re-evaluated.
    """
    if status not in PRODUCT_TRANSITIONS:
        raise ValueError(f"products cannot be moved to {status!r} by hand")
    ids = sorted({int(pk) for pk in product_ids})
    if not ids:
        return 0
    with transaction.atomic():
        scoped = list(
            scope_queryset(Product.objects.filter(pk__in=ids), user=user, merchant_path="merchant").values_list(
                "pk", flat=True
            )
        )
        changed = Product.objects.filter(pk__in=scoped, status__in=PRODUCT_TRANSITIONS[status]).update(
            status=status, updated_at=timezone.now()
        )
        if changed:
            send_stock_changed(sku_ids=Sku.objects.filter(product_id__in=scoped).values_list("pk", flat=True))
    return changed


# --- Low-stock evaluation -----------------------------------------------------------------------
def on_sale_q(prefix: str = "") -> Q:
    """Q for SKUs that are on sale and can therefore be low on stock."""
    return Q(
        **{
            f"{prefix}is_active": True,
            f"{prefix}product__status": Product.Status.LISTED,
            f"{prefix}product__delivery_mode": Product.DeliveryMode.AUTOMATIC,
            f"{prefix}product__merchant__status": Merchant.Status.ACTIVE,
        }
    )


def low_q(count: str = "available") -> Q:
    """Q for low SKUs, given an annotation ``count`` holding the for-sale count."""
    return Q(reusable_code=False, **{f"{count}__lte": F("low_stock_threshold")}) | Q(reusable_code=True, **{count: 0})


def low_skus(queryset: QuerySet[Sku] | None = None, *, now=None) -> QuerySet[Sku]:
    """On-sale SKUs that are low now, annotated with ``available`` (one query)."""
    queryset = Sku.objects.all() if queryset is None else queryset
    return queryset.filter(on_sale_q()).annotate(available=for_sale_count(now=now)).filter(low_q())


@dataclass
class StockCheck:
    opened: list[int] = field(default_factory=list)  # ids of the alerts this call opened
    closed: int = 0


def check_low_stock(*, sku_ids: Iterable[int], now: datetime.datetime | None = None) -> StockCheck:
    """Open or close the low-stock alerts of these SKUs to match their stock now. Idempotent."""
    ids = sorted({int(pk) for pk in sku_ids})
    result = StockCheck()
    if not ids:
        return result
    now = now or timezone.now()
    with transaction.atomic():
        # Serialise evaluations of the same SKU (see the module docstring).
        locked = list(
            Sku.objects.filter(pk__in=ids).order_by("pk").select_for_update(no_key=True).values_list("pk", flat=True)
        )
        rows = {
            row["pk"]: row
            for row in low_skus(Sku.objects.filter(pk__in=locked), now=now).values(
                "pk", "available", "low_stock_threshold"
            )
        }
        low = set(rows)
        result.closed = (
            StockAlert.objects.filter(sku_id__in=locked, closed_at__isnull=True)
            .exclude(sku_id__in=low)
            .update(closed_at=now)
        )
        already_open = set(
            StockAlert.objects.filter(sku_id__in=low, closed_at__isnull=True).values_list("sku_id", flat=True)
        )
        for sku_id in sorted(low - already_open):
            row = rows[sku_id]
            try:
                with transaction.atomic():
                    alert = StockAlert.objects.create(
                        sku_id=sku_id, available_at_open=row["available"], threshold=row["low_stock_threshold"]
                    )
            except IntegrityError:
                # Someone else opened this episode's alert between our read and our insert (only
                # possible for a writer that does not take the SKU lock): one alert it is.
                continue
            result.opened.append(alert.pk)
            _queue_notification(alert.pk)
    return result


def _queue_notification(alert_id: int) -> None:
    from catalog.tasks import notify_stock_alert

    enqueue_on_commit(notify_stock_alert, alert_id=alert_id)


def _check_pending_key(sku_id: int) -> str:
    return f"catalog:low-stock-check-pending:{sku_id}"


def on_stock_changed(sender, *, sku_ids, **kwargs) -> None:
    """Receiver of ``catalog.signals.stock_changed`` (connected in catalog/apps.py).

    Coalesced per SKU: a check is queued with a ``LOW_STOCK_CHECK_DELAY`` countdown only for SKUs
    that have none pending (a cache key, set here with ``add`` and deleted by the task *before* it
    evaluates). Every stock change is therefore followed by an evaluation that starts after the
    change committed — the pending one, or a new one — while a SKU selling 20 codes a second gets
    one check every few seconds instead of one per sale. If the cache cannot be reached the check
    is queued anyway; if the queued task is lost, the key expires and the periodic sweep catches up.
    """
    from catalog.tasks import check_low_stock as task

    delay = settings.LOW_STOCK_CHECK_DELAY
    pending = []
    for sku_id in sorted(set(sku_ids)):
        try:
            fresh = cache.add(_check_pending_key(sku_id), 1, delay + 60)
        except Exception:  # a cache outage must not stop the check
            logger.warning("low-stock check of SKU %s queued without coalescing: cache unavailable", sku_id)
            fresh = True
        if fresh:
            pending.append(sku_id)
    if pending:
        transaction.on_commit(
            lambda: task.apply_async(kwargs={"sku_ids": pending}, countdown=delay or None), robust=True
        )


def starting_low_stock_check(*, sku_ids: Iterable[int]) -> None:
    """Called by the task before it evaluates: changes from now on queue a check of their own."""
    try:
        cache.delete_many([_check_pending_key(sku_id) for sku_id in sku_ids])
    except Exception:  # the key expires by itself
        logger.warning("could not clear pending low-stock checks: cache unavailable")


def sweep_low_stock(*, now: datetime.datetime | None = None, chunk: int = 500) -> StockCheck:
    """Periodic: find every SKU whose alert state disagrees with its stock and fix it.

    Set-based: one query finds the low SKUs, one the SKUs with an open alert; only the difference
    (usually nothing) goes through :func:`check_low_stock`. Then open alerts whose e-mail never went
    out (broker down when they opened) are queued again.
    """
    now = now or timezone.now()
    low = set(low_skus(now=now).values_list("pk", flat=True))
    open_ = set(StockAlert.objects.filter(closed_at__isnull=True).values_list("sku_id", flat=True))
    result = StockCheck()
    mismatched = sorted(low ^ open_)
    for start in range(0, len(mismatched), chunk):
        part = check_low_stock(sku_ids=mismatched[start : start + chunk], now=now)
        result.opened += part.opened
        result.closed += part.closed
    stale = StockAlert.objects.filter(
        closed_at__isnull=True, notified_at__isnull=True, opened_at__lt=now - RENOTIFY_AFTER
    ).exclude(pk__in=result.opened)
    for alert_id in stale.values_list("pk", flat=True):
        _queue_notification(alert_id)
    return result


def open_alert_count(*, user: User) -> int:
    """How many low-stock alerts are open in ``user``'s scope (one query; none without permission)."""
    if not (user.is_active and user.is_staff and user.has_perm("catalog.view_stockalert")):
        return 0
    if merchant_ids(user) == []:
        return 0
    alerts = StockAlert.objects.filter(closed_at__isnull=True)
    return scope_queryset(alerts, user=user, merchant_path=CODE_SCOPE).count()


# --- E-mail -------------------------------------------------------------------------------------
def merchant_recipients(merchant_id: int) -> list[str]:
    """E-mail addresses of a merchant's active back-office users."""
    return list(
        User.objects.filter(merchants=merchant_id, is_active=True, is_staff=True)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
    )


def _send(*, template: str, context: dict, recipients: Iterable[str]) -> int:
    """Send one message per recipient (nobody sees the others' addresses). Returns how many."""
    recipients = list(dict.fromkeys(recipients))
    if not recipients:
        return 0
    with translation.override(settings.LANGUAGE_CODE):
        context = {"site_url": settings.SITE_URL, "shop_name": settings.SHOP_NAME, **context}
        subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
        text = render_to_string(f"{template}.txt", context)
        html = render_to_string(f"{template}.html", context)
    messages = []
    for address in recipients:
        message = EmailMultiAlternatives(subject, text, None, [address])
        message.attach_alternative(html, "text/html")
        messages.append(message)
    return get_connection().send_messages(messages) or 0


def notify_stock_alert(*, alert_id: int) -> bool:
    """E-mail an opened alert at most once. Returns whether this call sent it.

    Claims ``notified_at`` before sending (like ``accounts.services.send_welcome_email``): a
    repeated or concurrent task sends nothing; a crash between claim and send loses this e-mail
    (the daily digest still lists the SKU), never duplicates it. An alert already closed by a
    restock is not worth an e-mail any more.
    """
    claimed = StockAlert.objects.filter(pk=alert_id, notified_at__isnull=True, closed_at__isnull=True).update(
        notified_at=timezone.now()
    )
    if not claimed:
        return False
    alert = StockAlert.objects.select_related("sku__product__merchant").get(pk=alert_id)
    sku = alert.sku
    merchant = sku.product.merchant
    context = {
        "alert": alert,
        "sku": sku,
        "product": sku.product,
        "merchant": merchant,
        "sku_url": settings.SITE_URL + reverse("admin:catalog_sku_change", args=[sku.pk]),
    }
    recipients = merchant_recipients(merchant.pk) + list(settings.OPERATOR_EMAILS)
    _send(template="catalog/email/low_stock_alert", context=context, recipients=recipients)
    return True


# --- Daily digest -------------------------------------------------------------------------------
@dataclass
class DigestLine:
    sku_id: int
    merchant_id: int
    merchant_name: str
    product_title: str
    sku_label: str
    available: int
    threshold: int
    reusable: bool
    sold_7d: int

    @property
    def days_of_cover(self) -> str:
        """``available / (sold_7d / 7)`` to one decimal; "∞" with stock but no sales, "—" with neither."""
        if self.sold_7d == 0:
            return NO_SALES_WITH_STOCK if self.available else NO_SALES_NO_STOCK
        tenths = (self.available * COVER_WINDOW_DAYS * 10 * 2 + self.sold_7d) // (self.sold_7d * 2)  # half up
        return f"{tenths // 10}.{tenths % 10}"


def sold_in_window(*, sku_ids: Iterable[int], since: datetime.datetime) -> dict[int, int]:
    """Units sold per SKU since ``since``, from the codes (one query).

    Orders do not exist yet, so sales are read from ``CardCode.sold_at``: a single-use code counts
    once if it was sold in the window. A reusable code keeps only its *last* sale time and a total
    ``times_sold``, so when its last sale is in the window all of its ``times_sold`` count — an
    upper bound (it includes older sales of that code). The orders work should switch this to
    order items, which know every sale's time.
    """
    units = Case(When(reusable=True, then=F("times_sold")), default=Value(1), output_field=IntegerField())
    rows = (
        CardCode.objects.filter(sku_id__in=list(sku_ids), sold_at__gte=since)
        .order_by()
        .values("sku_id")
        .annotate(units=Sum(units))
    )
    return {row["sku_id"]: row["units"] or 0 for row in rows}


def low_stock_report(*, now: datetime.datetime | None = None) -> dict[int, list[DigestLine]]:
    """Low SKUs now, grouped by merchant id, with their sales of the last 7 days (two queries)."""
    now = now or timezone.now()
    skus = list(
        low_skus(now=now)
        .order_by("product__merchant__name", "product__merchant_id", "product__sort_order", "product_id", "sort_order")
        .values(
            "pk", "label", "low_stock_threshold", "reusable_code", "available", "product__title",
            "product__merchant_id", "product__merchant__name",
        )
    )  # fmt: skip
    sold = sold_in_window(sku_ids=[row["pk"] for row in skus], since=now - datetime.timedelta(days=COVER_WINDOW_DAYS))
    report: dict[int, list[DigestLine]] = defaultdict(list)
    for row in skus:
        report[row["product__merchant_id"]].append(
            DigestLine(
                sku_id=row["pk"],
                merchant_id=row["product__merchant_id"],
                merchant_name=row["product__merchant__name"],
                product_title=row["product__title"],
                sku_label=row["label"],
                available=row["available"],
                threshold=row["low_stock_threshold"],
                reusable=row["reusable_code"],
                sold_7d=sold.get(row["pk"], 0),
            )
        )
    return dict(report)


def send_low_stock_digest(*, now: datetime.datetime | None = None) -> int:
    """Daily: each merchant's staff get their low SKUs; operators get every merchant's. Returns e-mails sent.

    Each (day, merchant) and (day, operators) digest is claimed in the cache before it is sent, so
    a second run on the same day — late, repeated, or from a second beat host — sends nothing new.
    """
    now = now or timezone.now()
    day = timezone.localdate(now).isoformat()
    report = low_stock_report(now=now)
    sent = 0
    admin_url = settings.SITE_URL + reverse("admin:catalog_sku_changelist")
    for merchant_id, lines in report.items():
        if not cache.add(f"catalog:low-stock-digest:{day}:merchant:{merchant_id}", 1, 3 * 24 * 3600):
            continue
        sections = [{"merchant_name": lines[0].merchant_name, "lines": lines}]
        context = {"sections": sections, "day": day, "admin_url": admin_url, "window_days": COVER_WINDOW_DAYS}
        sent += _send(
            template="catalog/email/low_stock_digest", context=context, recipients=merchant_recipients(merchant_id)
        )
    if report and settings.OPERATOR_EMAILS and cache.add(f"catalog:low-stock-digest:{day}:operators", 1, 3 * 24 * 3600):
        sections = [{"merchant_name": lines[0].merchant_name, "lines": lines} for lines in report.values()]
        context = {"sections": sections, "day": day, "admin_url": admin_url, "window_days": COVER_WINDOW_DAYS}
        sent += _send(template="catalog/email/low_stock_digest", context=context, recipients=settings.OPERATOR_EMAILS)
    return sent


def require_reveal_permission(user: User) -> None:
    if not user.has_perm("catalog.reveal_cardcode"):
        raise PermissionDenied(_("You may not see full card codes."))
