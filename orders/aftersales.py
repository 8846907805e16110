"""After-sales: a buyer reports a problem with a delivered order; the merchant (or an operator) decides.

Lifecycle of an :class:`~orders.models.AfterSalesRequest`::

    open ──replace_codes──▶ replaced   (fresh codes of the same SKU handed over, the bad ones void)
      │ ──refund─────────▶ refunded   (whole or part of the payment, through the payment port)
      └ ──reject─────────▶ rejected   (with an answer the buyer reads)

Rules
-----
* A request can be opened only on a **delivered** order that has delivered card codes (manual
  services have no code to complain about: the buyer contacts the merchant), at most
  :data:`MAX_REQUESTS_PER_ORDER` over the order's life, and **one open at a time** — the partial
  unique constraint ``one_open_after_sales_per_order`` is the guarantee; the check before it only
  gives a nicer message.
* A decision is taken once: it claims the request with ``UPDATE … WHERE status = 'open'`` inside
  the transaction that does the work, so a double click, two browser tabs or two people deciding at
  the same moment give one decision, and the second is told it was already decided. If the work
  fails (no stock to replace with, nothing left to refund), the claim rolls back with it and the
  request stays open.
* Merchant staff decide only on orders that contain their goods, replace only their own items'
  codes and refund at most what their items cost; operators decide on anything.
* Every step writes an OrderEvent with the person who took it; every decision e-mails the buyer
  (a task queued on commit: :func:`send_email`).

Replacing codes
---------------
The delivered code the buyer reports as bad was sold and has been seen: it can never be sold again.
Its CardCode becomes ``void`` (``voided_at`` set; ``times_sold`` and ``sold_at`` keep the record of
the sale) and its OrderItemCode link becomes ``released`` — the order no longer hands it over, so
the order page, downloads and e-mails show only the replacement. The replacement codes are taken
exactly as checkout takes codes (:func:`orders.services.take_codes`: ``SELECT … FOR UPDATE SKIP
LOCKED`` on codes for sale now), marked ``sold`` and linked ``delivered``. The event
``after_sales_codes_replaced`` keeps both sides by id (never the codes themselves).

Refunds
-------
``delivered → refunding`` (orders.services.transition), then
a refund requested through orders' payment port (orders/payment_port.py, implemented by
payments.services.request_refund) on the payment that paid the order, reason
``after_sales``, in the same transaction (the gateway is called by the refund task after commit,
never under the row locks). When the refund succeeds, orders.services.record_refund closes the
order as ``refunded`` (all of it) or returns it to ``delivered`` with ``refunded_fen`` (part).

Lock order (``orders/locks.py``): Order → AfterSalesRequest → Payment → CardCode.

Evidence images are re-encoded with Pillow before they are stored (that drops EXIF data such as a
phone's GPS position, and anything that is not pixels), shrunk to at most
:data:`EVIDENCE_MAX_SIDE` pixels a side, and saved under a random name, outside any transaction.
"""

from __future__ import annotations

import io
import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.roles import merchant_ids
from catalog import allocation, codes
from catalog.signals import send_stock_changed
from kameng.money import fen_to_yuan_str
from kameng.tasks import enqueue_on_commit
from orders import locks, payment_port, services
from orders.models import AfterSalesRequest, Order, OrderEvent, OrderItem, OrderItemCode

logger = logging.getLogger(__name__)

Reason = AfterSalesRequest.Reason
RequestStatus = AfterSalesRequest.Status

MAX_REQUESTS_PER_ORDER = 5
MAX_MESSAGE_LENGTH = 2000
EVIDENCE_MAX_BYTES = 5 * 1024 * 1024
EVIDENCE_MAX_SIDE = 2048
EVIDENCE_MAX_PIXELS = 40_000_000  # decoded size: refuses "decompression bombs" long before Pillow would
EVIDENCE_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}

# Notification kinds (the task's argument and the OrderEvent that claims the e-mail).
OPENED = "opened"  # to the merchants concerned and the operators
DECIDED = "decided"  # to the buyer


class AfterSalesError(Exception):
    """Why an after-sales step cannot go ahead, worded for the person who tried it."""


class AlreadyDecided(AfterSalesError):
    def __init__(self):
        super().__init__(_("This request was already decided."))


# -- opening a request -----------------------------------------------------------------------------------


def eligibility_error(order: Order) -> str | None:
    """Why ``order`` cannot get a new request now, or None when it can."""
    if order.status != Order.Status.DELIVERED:
        return _("After-sales requests can be made only for delivered orders.")
    if not OrderItemCode.objects.filter(item__order=order, status=OrderItemCode.Status.DELIVERED).exists():
        return _("This order has no card codes. Please contact the merchant about manual services.")
    existing = list(AfterSalesRequest.objects.filter(order=order).values_list("status", flat=True))
    if RequestStatus.OPEN in existing:
        return _("This order already has an open after-sales request. Please wait for the merchant's answer.")
    if len(existing) >= MAX_REQUESTS_PER_ORDER:
        return _("This order has had too many after-sales requests. Please contact customer service.")
    return None


def clean_evidence(upload) -> ContentFile:
    """The uploaded image re-encoded without metadata, at most EVIDENCE_MAX_SIDE a side."""
    if upload.size is not None and upload.size > EVIDENCE_MAX_BYTES:
        raise AfterSalesError(
            _("The image is too large (at most %(mb)s MB).") % {"mb": EVIDENCE_MAX_BYTES // (1024 * 1024)}
        )
    try:
        upload.seek(0)
        with Image.open(upload) as probe:
            if probe.format not in EVIDENCE_FORMATS:
                raise AfterSalesError(_("Upload a JPEG, PNG, WebP or GIF image."))
            if probe.width * probe.height > EVIDENCE_MAX_PIXELS:
                raise AfterSalesError(_("The image has too many pixels."))
            probe.load()
            image = ImageOps.exif_transpose(probe)  # keep what the phone showed, then forget EXIF
            image.thumbnail((EVIDENCE_MAX_SIDE, EVIDENCE_MAX_SIDE))
            has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
            buffer = io.BytesIO()
            if has_alpha:
                image.convert("RGBA").save(buffer, format="PNG", optimize=True)
                extension = "png"
            else:
                image.convert("RGB").save(buffer, format="JPEG", quality=85, optimize=True)
                extension = "jpg"
    except AfterSalesError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise AfterSalesError(_("This file is not an image we can read.")) from None
    finally:
        upload.seek(0)
    return ContentFile(buffer.getvalue(), name=f"{uuid.uuid4().hex}.{extension}")


def open_request(*, order: Order, reason: str, message: str, evidence=None, actor=None) -> AfterSalesRequest:
    """The buyer reports a problem with a delivered order (``actor`` is None for a guest)."""
    if reason not in Reason.values:
        raise AfterSalesError(_("Choose what went wrong."))
    message = (message or "").strip()
    if not message:
        raise AfterSalesError(_("Tell the merchant what went wrong."))
    if len(message) > MAX_MESSAGE_LENGTH:
        raise AfterSalesError(_("Please keep the message under %(count)s characters.") % {"count": MAX_MESSAGE_LENGTH})
    problem = eligibility_error(Order.objects.get(pk=order.pk))  # early, before an image is stored
    if problem:
        raise AfterSalesError(problem)
    if actor is not None and not actor.is_authenticated:
        actor = None

    request = AfterSalesRequest(order=order, reason=reason, message=message)
    if evidence:
        # File storage may be remote: written before the transaction, removed again if it fails.
        cleaned = clean_evidence(evidence)
        request.evidence.save(cleaned.name, cleaned, save=False)
    try:
        with transaction.atomic():
            locked = locks.lock_order(order.pk)
            problem = eligibility_error(locked)
            if problem:
                raise AfterSalesError(problem)
            request.save()
            services.record_event(
                locked, kind="after_sales_opened", actor=actor,
                data={"request_id": request.pk, "reason": reason, "evidence": bool(request.evidence)},
            )  # fmt: skip
            _notify(request_id=request.pk, kind=OPENED)
    except IntegrityError:
        _discard_evidence(request)
        raise AfterSalesError(
            _("This order already has an open after-sales request. Please wait for the merchant's answer.")
        ) from None
    except BaseException:
        _discard_evidence(request)
        raise
    return request


def _discard_evidence(request: AfterSalesRequest) -> None:
    if request.evidence:
        request.evidence.delete(save=False)


# -- deciding ----------------------------------------------------------------------------------------------


def _decider_scope(order_id: int, actor) -> list[int] | None:
    """The merchants whose goods ``actor`` may decide on in this order; None for an operator."""
    if actor is None or not actor.is_authenticated:
        raise PermissionDenied("an after-sales decision needs a signed-in person")
    ids = merchant_ids(actor)
    if ids is None:
        return None
    if not ids or not OrderItem.objects.filter(order_id=order_id, merchant_id__in=ids).exists():
        raise PermissionDenied("not a merchant of this order")
    return ids


def _claim(request: AfterSalesRequest, *, status: str, actor, note: str, refund_fen: int = 0) -> dict:
    """Decide ``request`` once (conditional UPDATE); raises AlreadyDecided for the second decision."""
    values = {
        "status": status, "decided_by": actor, "decided_at": timezone.now(), "decision_note": note,
        "refund_fen": refund_fen,
    }  # fmt: skip
    if not AfterSalesRequest.objects.filter(pk=request.pk, status=RequestStatus.OPEN).update(**values):
        raise AlreadyDecided
    return values


def _apply(request: AfterSalesRequest, values: dict) -> AfterSalesRequest:
    for name, value in values.items():
        setattr(request, name, value)
    return request


def _lock_order(request: AfterSalesRequest) -> Order:
    return locks.lock_order(request.order_id)


def replace_codes(
    *, request: AfterSalesRequest, actor, item_codes: list[int] | None = None, note: str = ""
) -> AfterSalesRequest:
    """Hand over fresh codes of the same SKU for the delivered codes ``item_codes`` (OrderItemCode
    ids; default: every single-use code of the order the actor may act on); the old ones become void."""
    scope = _decider_scope(request.order_id, actor)
    note = (note or "").strip()
    now = timezone.now()
    with transaction.atomic():
        order = _lock_order(request)
        if order.status != Order.Status.DELIVERED:
            raise AfterSalesError(_("Codes can be replaced only on a delivered order."))
        links_qs = OrderItemCode.objects.filter(
            item__order=order, status=OrderItemCode.Status.DELIVERED, reusable=False
        ).select_related("item__sku")
        if scope is not None:
            links_qs = links_qs.filter(item__merchant_id__in=scope)
        if item_codes is not None:
            wanted = {int(pk) for pk in item_codes}
            links_qs = links_qs.filter(pk__in=wanted)
        links = list(links_qs.order_by("item__sku_id", "pk"))
        if item_codes is not None and len(links) != len(wanted):
            raise AfterSalesError(_("Some of the chosen codes are not delivered codes of this order."))
        if not links:
            raise AfterSalesError(_("There is no delivered code to replace."))
        values = _claim(request, status=RequestStatus.REPLACED, actor=actor, note=note)

        by_sku: dict[int, list[OrderItemCode]] = {}
        for link in links:
            by_sku.setdefault(link.item.sku_id, []).append(link)
        new_links = []
        for _sku_id, group in sorted(by_sku.items()):
            sku = group[0].item.sku
            fresh = services.take_codes(sku=sku, quantity=len(group), now=now)
            if len(fresh) < len(group):
                raise AfterSalesError(
                    _("Not enough codes of %(sku)s in stock to replace %(count)s (%(available)s available).")
                    % {"sku": f"{group[0].item.product_title} · {group[0].item.sku_label}", "count": len(group),
                       "available": len(fresh)}
                )  # fmt: skip
            new_links += [
                OrderItemCode(item_id=link.item_id, code_id=code_id, status=OrderItemCode.Status.DELIVERED)
                for link, code_id in zip(group, fresh, strict=True)
            ]
        old_code_ids = [link.code_id for link in links]
        new_code_ids = [link.code_id for link in new_links]
        # The old links let go first: the partial unique constraint holds at every step.
        OrderItemCode.objects.filter(pk__in=[link.pk for link in links]).update(status=OrderItemCode.Status.RELEASED)
        allocation.void(code_ids=old_code_ids, now=now)
        allocation.sell(code_ids=new_code_ids, now=now)
        OrderItemCode.objects.bulk_create(new_links)
        services.record_event(
            order, kind="after_sales_codes_replaced", actor=actor, note=note,
            data={"request_id": request.pk, "count": len(links), "old_code_ids": old_code_ids,
                  "new_code_ids": new_code_ids},
        )  # fmt: skip
        send_stock_changed(sku_ids=by_sku.keys())
        _notify(request_id=request.pk, kind=DECIDED)
    return _apply(request, values)


def refund_limit_fen(*, request: AfterSalesRequest, actor) -> int:
    """The most ``actor`` may refund on this request's order now (0 when nothing can be)."""
    scope = _decider_scope(request.order_id, actor)
    order = Order.objects.get(pk=request.order_id)
    return _refund_limit(order, scope)


def _refund_limit(order: Order, scope: list[int] | None) -> int:
    refundable = payment_port.get().refundable_fen(order)
    if refundable is None:  # no completed payment
        return 0
    limit = min(refundable, order.total_fen - order.refunded_fen)
    if scope is not None:
        own = OrderItem.objects.filter(order=order, merchant_id__in=scope).aggregate(total=Sum("total_fen"))["total"]
        limit = min(limit, own or 0)
    return max(limit, 0)


def refund(
    *, request: AfterSalesRequest, amount_fen: int | None = None, actor, note: str = ""
) -> payment_port.RequestedRefund:
    """Refund ``amount_fen`` (None: everything the actor may refund) of the order's payment."""
    scope = _decider_scope(request.order_id, actor)
    note = (note or "").strip()
    with transaction.atomic():
        order = _lock_order(request)
        if order.status != Order.Status.DELIVERED:
            raise AfterSalesError(_("Only a delivered order can be refunded here."))
        limit = _refund_limit(order, scope)
        if limit <= 0:  # 0 also when no completed payment paid the order
            raise AfterSalesError(_("Nothing is left to refund on this order."))
        amount = limit if amount_fen is None else amount_fen
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= limit:
            raise AfterSalesError(
                _("The refund must be more than ¥0.00 and at most %(limit)s.") % {"limit": _yuan(limit)}
            )
        values = _claim(request, status=RequestStatus.REFUNDED, actor=actor, note=note, refund_fen=amount)
        if not services.transition(
            order, source=[Order.Status.DELIVERED], target=Order.Status.REFUNDING, kind="after_sales_refund",
            actor=actor, note=note, data={"request_id": request.pk, "amount_fen": amount},
            refunding_reason=Order.RefundingReason.AFTER_SALES,
        ):  # fmt: skip
            raise AfterSalesError(_("Only a delivered order can be refunded here."))
        try:
            created = payment_port.get().request_refund(
                order=order, amount_fen=amount, reason=payment_port.RefundReason.AFTER_SALES,
                note=note or f"after-sales #{request.pk}", actor=actor,
            )  # fmt: skip
        except payment_port.PaymentRefused:
            raise AfterSalesError(_("The payment cannot be refunded this way. Please ask an operator.")) from None
        _notify(request_id=request.pk, kind=DECIDED)
    _apply(request, values)
    return created


def reject(*, request: AfterSalesRequest, actor, note: str) -> AfterSalesRequest:
    """Turn the request down, saying why (the buyer reads the note)."""
    _decider_scope(request.order_id, actor)
    note = (note or "").strip()
    if not note:
        raise AfterSalesError(_("Say why the request is rejected: the buyer reads your answer."))
    with transaction.atomic():
        order = _lock_order(request)
        values = _claim(request, status=RequestStatus.REJECTED, actor=actor, note=note)
        services.record_event(
            order, kind="after_sales_rejected", actor=actor, note=note, data={"request_id": request.pk}
        )
        _notify(request_id=request.pk, kind=DECIDED)
    return _apply(request, values)


# -- e-mails -----------------------------------------------------------------------------------------------


def _notify(*, request_id: int, kind: str) -> None:
    from orders.tasks import send_after_sales_email

    enqueue_on_commit(send_after_sales_email, request_id=request_id, kind=kind)


def _yuan(fen: int) -> str:
    return f"¥{fen_to_yuan_str(fen)}"


@dataclass
class ReplacedItem:
    item: OrderItem
    secrets: list[codes.Secret] = field(default_factory=list)


def _claim_email(request_id: int, kind: str) -> AfterSalesRequest | None:
    """Record that this e-mail goes out (at most once per request, kind and decision)."""
    with transaction.atomic():
        request = AfterSalesRequest.objects.filter(pk=request_id).first()
        if request is None:
            return None
        order = locks.lock_order(request.order_id)  # serialises the claim
        request.refresh_from_db()
        if (kind == DECIDED) == (request.status == RequestStatus.OPEN):
            return None  # nothing decided yet / already decided: the merchant needs no reminder
        event = f"after_sales_{kind}_email"
        if OrderEvent.objects.filter(order=order, kind=event, data__request_id=request_id).exists():
            return None
        services.record_event(order, kind=event, data={"request_id": request_id, "status": request.status})
    request.order = order
    return request


def send_email(*, request_id: int, kind: str) -> bool:
    """Send the notification ``kind`` of a request: ``opened`` to the merchants concerned (and
    OPERATOR_EMAILS), ``decided`` to the buyer. Idempotent; card codes only ever go to the buyer."""
    if kind not in (OPENED, DECIDED):
        raise ValueError(f"unknown after-sales e-mail {kind!r}")
    if kind == OPENED:
        recipients = _merchant_recipients(request_id)
        if not recipients:
            return False
    request = _claim_email(request_id, kind)
    if request is None:
        return False
    order = request.order
    if kind == OPENED:
        language = settings.LANGUAGE_CODE
        context = {
            "order": order,
            "request": request,
            "admin_url": settings.SITE_URL.rstrip("/")
            + reverse("admin:orders_aftersalesrequest_change", args=[request.pk]),
            "shop_name": settings.SHOP_NAME,
        }
        template = "orders/email/aftersales_opened"
    else:
        language = order.language or settings.LANGUAGE_CODE
        recipients = [order.email]
        context = {
            "order": order,
            "request": request,
            "replaced": _replacement_codes(request) if request.status == RequestStatus.REPLACED else [],
            "order_url": settings.SITE_URL.rstrip("/") + order.get_absolute_url(),
            "shop_name": settings.SHOP_NAME,
        }
        template = "orders/email/aftersales_decided"
    with translation.override(language):
        subject = render_to_string(f"{template}_subject.txt", context).strip()
        text = render_to_string(f"{template}.txt", context)
        html = render_to_string(f"{template}.html", context)
    message = EmailMultiAlternatives(subject, text, None, recipients)
    message.attach_alternative(html, "text/html")
    message.send()
    return True


def _merchant_recipients(request_id: int) -> list[str]:
    from accounts.models import Merchant

    emails = Merchant.objects.filter(order_items__order__after_sales__pk=request_id).values_list(
        "contact_email", flat=True
    )
    found = sorted({email for email in emails if email} | set(settings.OPERATOR_EMAILS))
    return found


def _replacement_codes(request: AfterSalesRequest) -> list[ReplacedItem]:
    """The codes handed over by this request's replacement, decrypted for the buyer's e-mail."""
    event = (
        OrderEvent.objects.filter(order_id=request.order_id, kind="after_sales_codes_replaced")
        .filter(data__request_id=request.pk)
        .first()
    )
    if event is None:
        return []
    links = (
        OrderItemCode.objects.filter(
            item__order_id=request.order_id,
            status=OrderItemCode.Status.DELIVERED,
            code_id__in=event.data.get("new_code_ids", []),
        )
        .select_related("item", "code")
        .order_by("item_id", "pk")
    )
    items: dict[int, ReplacedItem] = {}
    for link in links:
        entry = items.setdefault(link.item_id, ReplacedItem(item=link.item))
        entry.secrets.append(codes.decrypt(link.code.payload))
    return list(items.values())
