"""The promotions report page in admin (marketing/report.py computes it): a date range, a table, a chart
and an .xlsx export with the same figures. Operators see every row; merchant staff only their own
merchant-funded promotions; anyone else gets 403 (signed-out users: the admin's sign-in)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import FileResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _

from accounts.roles import merchant_ids
from marketing import report as promotions_report
from marketing.models import Coupon

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_DAYS = 366


class RangeForm(forms.Form):
    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To (inclusive)"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise forms.ValidationError(_("The end is before the start."))
            if (end - start).days >= MAX_DAYS:
                raise forms.ValidationError(_("Choose at most %(days)s days.") % {"days": MAX_DAYS})
        return data


def default_range() -> dict:
    today = timezone.localdate()
    return {"start": today - timedelta(days=29), "end": today}


def report_view(model_admin, request):
    ids = merchant_ids(request.user)
    if ids is not None and not ids:
        raise PermissionDenied
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    form = RangeForm(request.GET if "start" in request.GET else None, initial=default_range())
    if form.is_bound and not form.is_valid():
        result = None
    else:
        dates = form.cleaned_data if form.is_bound else default_range()
        result = promotions_report.build(start=dates["start"], end=dates["end"], merchant_ids=ids)
        if request.GET.get("export") == "xlsx":
            response = FileResponse(
                promotions_report.workbook(result), as_attachment=True, content_type=XLSX_CONTENT_TYPE,
                filename=f"promotions-{result.start:%Y%m%d}-{result.end:%Y%m%d}.xlsx",
            )  # fmt: skip
            add_never_cache_headers(response)
            return response
    chart = None
    if result is not None and result.rows:
        chart = {
            "names": [row.name for row in result.rows],
            "platform": [row.platform_fen / 100 for row in result.rows],
            "merchant": [row.merchant_fen / 100 for row in result.rows],
            "revenue": [row.revenue_fen / 100 for row in result.rows],
            "labels": {
                "platform": str(_("Discount, platform (¥)")), "merchant": str(_("Discount, merchants (¥)")),
                "revenue": str(_("Revenue (¥)")),
            },
        }  # fmt: skip
    query = request.GET.copy()
    query["export"] = "xlsx"
    if result is not None:
        query.setdefault("start", f"{result.start:%Y-%m-%d}")
        query.setdefault("end", f"{result.end:%Y-%m-%d}")
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Coupon._meta,
        "title": _("Promotions report"),
        "form": form,
        "report": result,
        "chart": chart,
        "export_query": query.urlencode(),
        "headers": promotions_report.HEADERS,
        "is_merchant": ids is not None,
    }
    response = TemplateResponse(request, "admin/marketing/report.html", context)
    add_never_cache_headers(response)
    return response
