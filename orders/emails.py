"""The delivery e-mail: the codes, in HTML and text, in the buyer's language.

Plaintext codes exist only while the message is built; they are never logged.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone, translation

from orders import selectors
from orders.models import Order


def send_delivery_email(*, order_id: int, again: bool = False) -> bool:
    """Send the codes to the order's e-mail address. The automatic mail goes out once (claimed with
    a conditional update); ``again=True`` is a merchant's explicit re-send of the same codes."""
    if not again:
        # A signed-in buyer who turned delivery e-mails off (/me/settings/) gets none: the codes are
        # on the order page. Guests always do (their e-mail is how they get the codes).
        claimed = (
            Order.objects.filter(
                pk=order_id,
                delivery_email_sent_at__isnull=True,
                status__in=[Order.Status.DELIVERED, Order.Status.PROCESSING],
            )
            .exclude(buyer__notify_delivery_email=False)
            .update(delivery_email_sent_at=timezone.now())
        )
        if not claimed:
            return False
    order = Order.objects.get(pk=order_id)
    delivered = selectors.delivered_codes(order=order)
    with translation.override(order.language or settings.LANGUAGE_CODE):
        context = {
            "order": order,
            "items": delivered,
            "order_url": settings.SITE_URL.rstrip("/") + order.get_absolute_url(),
            "shop_name": settings.SHOP_NAME,
        }
        subject = render_to_string("orders/email/delivered_subject.txt", context).strip()
        text = render_to_string("orders/email/delivered.txt", context)
        html = render_to_string("orders/email/delivered.html", context)
    message = EmailMultiAlternatives(subject, text, None, [order.email])
    message.attach_alternative(html, "text/html")
    message.send()
    return True
