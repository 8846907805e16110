"""The after-sales admin: requests of a merchant's orders, and the decision page (replace codes,
refund, reject)."""

from __future__ import annotations

from decimal import InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.roles import merchant_ids
from kameng.money import yuan_str_to_fen
from orders import aftersales
from orders.admin.common import (
    OrderScopedAdmin,
    changeable_object,
    confirm_with_note,
    yuan,
)
from orders.admin.membership import member_badge
from orders.membership import is_member_expr
from orders.models import AfterSalesRequest, OrderItemCode


# --- after-sales ------------------------------------------------------------------------------------
class DecisionForm(forms.Form):
    REPLACE, REFUND, REJECT = "replace", "refund", "reject"

    decision = forms.ChoiceField(
        label=_("Decision"),
        widget=forms.RadioSelect,
        choices=[
            (REPLACE, _("Replace codes with fresh ones of the same denomination")),
            (REFUND, _("Refund (whole or part)")),
            (REJECT, _("Reject")),
        ],
    )
    codes = forms.TypedMultipleChoiceField(
        label=_("Codes to replace"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: all of them. The replaced codes become void."),
    )  # fmt: skip
    amount = forms.CharField(label=_("Refund amount (yuan)"), required=False, max_length=16)
    note = forms.CharField(
        label=_("Answer to the buyer"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Required to reject. The buyer reads it on the order page and in the e-mail."),
    )

    def __init__(self, *args, links=(), limit_fen: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["codes"].choices = [
            (link.pk, f"{link.item.product_title} · {link.item.sku_label} · {link.code.hint}") for link in links
        ]
        self.fields["amount"].help_text = gettext("Empty: everything you may refund, %(limit)s.") % {
            "limit": yuan(limit_fen)
        }

    def clean(self):
        data = super().clean()
        decision = data.get("decision")
        if decision == self.REJECT and not (data.get("note") or "").strip():
            self.add_error("note", gettext("Say why the request is rejected: the buyer reads your answer."))
        data["amount_fen"] = None
        if decision == self.REFUND and (data.get("amount") or "").strip():
            try:
                data["amount_fen"] = yuan_str_to_fen(data["amount"].replace("¥", ""))
            except (ValueError, InvalidOperation):
                self.add_error("amount", gettext("Enter an amount in yuan, like 12.50."))
        return data


@admin.register(AfterSalesRequest)
class AfterSalesRequestAdmin(OrderScopedAdmin):
    merchant_path = "order__items__merchant"  # applied with EXISTS (OrderScopedAdmin)
    order_ref = "order_id"
    list_display = [
        "order_number", "member", "reason", "status", "created_at", "has_evidence", "refund", "decided_by",
        "decided_at", "order_status",
    ]  # fmt: skip
    list_filter = ["status", "reason", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["order", "decided_by"]
    search_fields = ["=order__number", "=order__email"]
    search_help_text = _("Exact order number or e-mail address.")
    show_full_result_count = False
    fields = [
        "order_link", "order_status", "reason", "message", "evidence_preview", "created_at", "status", "refund",
        "decision_note", "decided_by", "decided_at",
    ]  # fmt: skip
    readonly_fields = fields
    actions = ["replace_selected", "refund_selected", "reject_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(is_member=is_member_expr("order__buyer_id"))

    def get_ordering(self, request):
        """Requests of active annual members first (orders/membership.py), then the newest."""
        return [is_member_expr("order__buyer_id").desc(), "-created_at"]

    @admin.display(description=_("priority"), ordering="is_member")
    def member(self, obj):
        return member_badge(obj.is_member)

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, obj):
        return obj.order.number

    @admin.display(description=_("order"))
    def order_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[obj.order_id]), obj.order.number
        )

    @admin.display(description=_("order status"))
    def order_status(self, obj):
        return obj.order.get_status_display()

    @admin.display(description=_("evidence"), boolean=True)
    def has_evidence(self, obj):
        return bool(obj.evidence)

    @admin.display(description=_("refund"))
    def refund(self, obj):
        return yuan(obj.refund_fen) if obj.refund_fen else "—"

    @admin.display(description=_("evidence"))
    def evidence_preview(self, obj):
        if not obj.evidence:
            return "—"
        return format_html(
            '<a href="{0}" target="_blank" rel="noopener"><img src="{0}" alt="" '
            'style="max-width: 320px; max-height: 320px"></a>',
            obj.evidence.url,
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="orders_aftersalesrequest_decide",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False,
            "show_delete": False,
        }  # fmt: skip
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if obj is not None:
            extra_context["masked_codes"] = _decidable_links(obj, request.user)
            if obj.status == AfterSalesRequest.Status.OPEN and self.has_change_permission(request):
                extra_context["decide_url"] = reverse("admin:orders_aftersalesrequest_decide", args=[obj.pk])
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request, object_id):
        obj = changeable_object(self, request, object_id)
        change_url = reverse("admin:orders_aftersalesrequest_change", args=[obj.pk])
        if obj.status != AfterSalesRequest.Status.OPEN:
            self.message_user(request, gettext("This request was already decided."), messages.WARNING)
            return redirect(change_url)
        links = _decidable_links(obj, request.user)
        limit = aftersales.refund_limit_fen(request=obj, actor=request.user)
        form = DecisionForm(request.POST or None, links=links, limit_fen=limit)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["decision"] == DecisionForm.REPLACE:
                    aftersales.replace_codes(
                        request=obj, actor=request.user, item_codes=data["codes"] or None, note=data["note"]
                    )
                    done = gettext("Codes replaced; the buyer gets the new ones by e-mail.")
                elif data["decision"] == DecisionForm.REFUND:
                    refund = aftersales.refund(
                        request=obj, amount_fen=data["amount_fen"], actor=request.user, note=data["note"]
                    )
                    done = gettext("Refund of %(amount)s requested.") % {"amount": yuan(refund.amount_fen)}
                else:
                    aftersales.reject(request=obj, actor=request.user, note=data["note"])
                    done = gettext("Request rejected; the buyer gets your answer.")
            except aftersales.AfterSalesError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, done, messages.SUCCESS)
                return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Decide on the after-sales request"),
            "original": obj,
            "order": obj.order,
            "form": form,
            "change_url": change_url,
            "refund_limit": yuan(limit),
        }
        return TemplateResponse(request, "admin/orders/aftersalesrequest/decide.html", context)

    # -- actions ----------------------------------------------------------------------------------
    def _decide_each(self, request, queryset, decide) -> None:
        done, failed = 0, []
        for obj in queryset.select_related("order").order_by("pk"):
            try:
                decide(obj)
            except aftersales.AfterSalesError as exc:
                failed.append(f"{obj.order.number}: {exc}")
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext("%(count)d request decided.", "%(count)d requests decided.", done) % {"count": done},
                messages.SUCCESS,
            )
        for failure in failed[:20]:
            self.message_user(request, failure, messages.WARNING)

    def _decide_selected(self, request, queryset, decide, *, title, note_required: bool, intro: str = ""):
        """Confirm with an answer to the buyer, then ``decide(request=…, actor=…, note=…)`` each."""
        return confirm_with_note(
            self, request, queryset, title=title, note_required=note_required,
            note_label=_("Answer to the buyer (required)") if note_required else _("Answer to the buyer"),
            apply=lambda note: self._decide_each(
                request, queryset, lambda obj: decide(request=obj, actor=request.user, note=note)
            ),
            intro=intro,
        )  # fmt: skip

    @admin.action(description=_("Replace all codes of the selected requests"), permissions=["change"])
    def replace_selected(self, request, queryset):
        return self._decide_selected(
            request,
            queryset,
            aftersales.replace_codes,
            title=gettext("Replace codes"),
            note_required=False,
            intro=gettext("Every delivered code of these orders is replaced with a fresh one; the old ones are void."),
        )

    @admin.action(description=_("Refund the selected requests in full"), permissions=["change"])
    def refund_selected(self, request, queryset):
        return self._decide_selected(
            request,
            queryset,
            aftersales.refund,
            title=gettext("Refund in full"),
            note_required=False,
            intro=gettext("Everything you may refund on each order goes back to the buyer."),
        )

    @admin.action(description=_("Reject the selected requests"), permissions=["change"])
    def reject_selected(self, request, queryset):
        return self._decide_selected(request, queryset, aftersales.reject, title=gettext("Reject"), note_required=True)


def _decidable_links(request_obj: AfterSalesRequest, user) -> list[OrderItemCode]:
    """The delivered single-use codes of the request's order that ``user`` may replace (masks only)."""
    links = OrderItemCode.objects.filter(
        item__order_id=request_obj.order_id, status=OrderItemCode.Status.DELIVERED, reusable=False
    ).select_related("item", "code")
    ids = merchant_ids(user) if user is not None else []
    if ids is not None:
        links = links.filter(item__merchant_id__in=ids)
    return list(links.order_by("item_id", "pk"))
