"""The delivery SMS (issue 13, "发送兑换码至预留手机号"): when the buyer gave a mobile number and
asked for it at checkout (``Order.sms_opt_in``; signed-in buyers start from their notification
setting), one text with the order link — and the codes themselves only when every delivered SKU's
merchant allows it (``Sku.sms_code_allowed``) and the operator configured a template for it.

Sent by the worker that delivered the order, after the delivery committed (orders.services), at
most once: :func:`send_delivery_sms` claims ``delivery_sms_sent_at`` with a conditional UPDATE before
calling the gateway, so a retried task, a second worker or a re-run delivery sends nothing more. A
gateway failure is logged (the order number, never the text or the number) and not retried: a
retried SendSms could text the buyer twice, and the codes are on the order page and in the e-mail.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from accounts import sms
from catalog.models import Sku
from orders import access, selectors
from orders.models import Order

logger = logging.getLogger(__name__)

# Codes in one text at most; more than that and the text carries the link only (a long SMS is
# split, charged per part, and a list of codes is easier to copy from the page).
MAX_CODES_IN_SMS = 3


def send_delivery_sms(*, order_id: int) -> bool:
    """Text the delivered order's link (and codes, when allowed) to its number. Returns whether
    this call sent it."""
    claimed = (
        Order.objects.filter(
            pk=order_id, status=Order.Status.DELIVERED, sms_opt_in=True, delivery_sms_sent_at__isnull=True
        )
        .exclude(phone="")
        .update(delivery_sms_sent_at=timezone.now())
    )
    if not claimed:
        return False
    order = Order.objects.get(pk=order_id)
    # A guest's link opens the order on the phone without the query secret (orders/access.py).
    url = settings.SITE_URL.rstrip("/") + order.get_absolute_url() + access.guest_link_query(order)
    params = {"order": order.number, "url": url}
    codes = _codes_allowed_in_sms(order)
    template = "delivery"
    if codes and sms.can_send("delivery_codes"):
        template, params = "delivery_codes", {**params, "codes": " ".join(codes)}
    try:
        sms.send(order.phone, template, params)
    except sms.SmsError as exc:
        logger.warning("delivery SMS of order %s not sent: %s", order.number, exc)
        return False
    return True


def _codes_allowed_in_sms(order: Order) -> list[str]:
    """The delivered codes as text (``code`` or ``code/password``), when every item's SKU allows
    codes by SMS and there are at most MAX_CODES_IN_SMS; else none."""
    sku_ids = {item.sku_id for item in order.items.all()}
    if not sku_ids or Sku.objects.filter(pk__in=sku_ids, sms_code_allowed=False).exists():
        return []
    texts = [
        f"{secret.code}/{secret.password}" if secret.password else secret.code
        for item in selectors.delivered_codes(order=order)
        for secret in item.secrets
    ]
    return texts if 0 < len(texts) <= MAX_CODES_IN_SMS else []
