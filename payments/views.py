"""Payment pages: start an attempt, the QR page, the sandbox gateway, the return page, and the
gateways' notification endpoints.

The return page never trusts its query string: it sends the buyer to the order page, which
shows the order's real state and polls until it changes. Notifications are handled by
payments/notifications.py: CSRF-exempt, POST only, always answered in the gateway's own format.
"""

import segno
from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from orders.access import can_view
from orders.models import Order
from payments import notifications, providers, services
from payments.models import Payment


@require_POST
def start(request, number: str):
    order = get_object_or_404(Order, number=number)
    if not can_view(request, order):
        raise Http404
    provider_name, method = request.POST.get("provider", ""), request.POST.get("method", "")
    return begin(request, order=order, provider_name=provider_name, method=method)


def begin(request, *, order: Order, provider_name: str, method: str = ""):
    """Open a payment attempt for ``order`` and answer with the way to pay it: the gateway's page
    (a redirect), its QR code, or — when it cannot be paid this way — the order page with a message.
    Used by the order page's pay buttons and by checkout, which goes straight to paying."""
    try:
        payment, action = services.start_payment(
            order=order, provider_name=provider_name, request=request, method=method
        )
    except (services.PaymentError, providers.ProviderError) as exc:
        messages.error(request, getattr(exc, "user_message", "") or _("This order cannot be paid this way right now."))
        return redirect(order)
    if action.redirect_url:
        return redirect(action.redirect_url)
    return qr_page(request, order=order, payment=payment, qr_content=action.qr_content)


def qr_page(request, *, order: Order, payment: Payment, qr_content: str):
    """The QR code to scan (WeChat Native, Alipay precreate), drawn here by segno: no remote service
    sees the payment link. The page polls the order's state and moves on once it changes."""
    code = segno.make(qr_content, error="m")
    provider = providers.provider_class(payment.provider)
    response = render(
        request,
        "payments/qr.html",
        {
            "order": order,
            "payment": payment,
            "provider_name": payment.provider,
            "provider_label": provider.label if provider else payment.provider,
            "qr_svg": mark_safe(code.svg_inline(scale=6, dark="#111", light="#fff", border=2)),  # noqa: S308 - segno's own markup
            "seconds_left": max(0, int((order.reserved_until - timezone.now()).total_seconds())),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


def sandbox(request, out_trade_no: str):
    """A stand-in for a gateway's cashier page (DEBUG only)."""
    if not settings.PAYMENT_SANDBOX_ENABLED:
        raise Http404
    payment = get_object_or_404(Payment.objects.select_related("order"), out_trade_no=out_trade_no, provider="sandbox")
    if request.method == "POST":
        if request.POST.get("action") == "pay":
            outcome = services.confirm_payment(
                out_trade_no=payment.out_trade_no, amount_fen=payment.amount_fen,
                gateway_trade_no=f"SANDBOX{payment.pk:010d}", provider="sandbox",
            )  # fmt: skip
            if outcome == services.Confirmation.DUPLICATE:
                messages.warning(request, _("This order was already paid; this payment will be refunded."))
        else:
            services.fail_payment(out_trade_no=payment.out_trade_no, provider="sandbox")
            messages.info(request, _("Payment cancelled. You can pay again before the deadline."))
        return redirect("payments:return", out_trade_no=payment.out_trade_no)
    return render(request, "payments/sandbox.html", {"payment": payment, "order": payment.order})


def payment_return(request, out_trade_no: str):
    payment = get_object_or_404(Payment.objects.select_related("order"), out_trade_no=out_trade_no)
    return redirect(payment.order)


@csrf_exempt
@require_POST
@never_cache
def alipay_notify(request):
    return notifications.handle(provider_name="alipay", request=request)


@csrf_exempt
@require_POST
@never_cache
def wechat_notify(request):
    return notifications.handle(provider_name="wechat", request=request)
