"""Payment pages: start an attempt, the sandbox gateway, and the return page.

The return page never trusts its query string: it sends the buyer to the order page, which
shows the order's real state and polls until it changes.
"""

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from orders.access import can_view
from orders.models import Order
from payments import providers, services
from payments.models import Payment


@require_POST
def start(request, number: str):
    order = get_object_or_404(Order, number=number)
    if not can_view(request, order):
        raise Http404
    try:
        _payment, action = services.start_payment(
            order=order, provider_name=request.POST.get("provider", ""), request=request
        )
    except (services.PaymentError, providers.ProviderError):
        messages.error(request, _("This order cannot be paid this way right now."))
        return redirect(order)
    if action.redirect_url:
        return redirect(action.redirect_url)
    return render(request, "payments/qr.html", {"order": order, "qr_content": action.qr_content})


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
