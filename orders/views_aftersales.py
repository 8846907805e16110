"""The buyer's side of after-sales: open a request on a delivered order (the order page links here and
embeds the same form). Thin: the rules are in orders/aftersales.py.

Only the order's owner gets here (orders/access.py), with the same 404 as the order page for anyone
else. Opening is rate-limited per IP on top of the one-open-request rule.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django_ratelimit.decorators import ratelimit

from orders import access, aftersales
from orders.models import AfterSalesRequest, Order


class AfterSalesForm(forms.Form):
    reason = forms.ChoiceField(label=_("What went wrong?"), choices=AfterSalesRequest.Reason.choices)
    message = forms.CharField(
        label=_("Describe the problem"),
        max_length=aftersales.MAX_MESSAGE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Which code, what the game or app said, when you tried it."),
    )
    evidence = forms.ImageField(
        label=_("Screenshot (optional)"),
        required=False,
        help_text=_("JPEG, PNG, WebP or GIF, at most 5 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"}),
    )

    def clean_message(self):
        message = self.cleaned_data["message"].strip()
        if not message:
            raise forms.ValidationError(_("Tell the merchant what went wrong."))
        return message

    def clean_evidence(self):
        upload = self.cleaned_data.get("evidence")
        if not upload:
            return None
        if upload.size > aftersales.EVIDENCE_MAX_BYTES:
            raise forms.ValidationError(_("The image is too large (at most 5 MB)."))
        image = getattr(upload, "image", None)  # set by ImageField once Pillow has verified the file
        if image is None or image.format not in aftersales.EVIDENCE_FORMATS:
            raise forms.ValidationError(_("Upload a JPEG, PNG, WebP or GIF image."))
        return upload


def _order_for(request, number: str) -> Order:
    order = get_object_or_404(Order, number=number)
    if not access.can_view(request, order):
        raise Http404  # the same answer as for an order that does not exist
    return order


@never_cache
@ratelimit(key="ip", rate="10/h", method="POST", block=False)
def open_request(request, number: str):
    order = _order_for(request, number)
    form = AfterSalesForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if getattr(request, "limited", False):
            form.add_error(None, _("Too many requests. Please wait a while and try again."))
        elif form.is_valid():
            data = form.cleaned_data
            try:
                aftersales.open_request(
                    order=order, reason=data["reason"], message=data["message"], evidence=data["evidence"],
                    actor=request.user,
                )  # fmt: skip
            except aftersales.AfterSalesError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("Your request was sent to the merchant. We will e-mail you the answer."))
                return redirect(order.get_absolute_url() + "#after-sales")
    context = {
        "order": order,
        "form": form,
        "requests": order.after_sales.all(),
        "problem": aftersales.eligibility_error(order),
    }
    return render(request, "orders/aftersales.html", context, status=429 if getattr(request, "limited", False) else 200)
