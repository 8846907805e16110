"""Admin for ImportBatch: upload, background check with a progress bar, preview, confirm or cancel.

* "Add" is the upload form (product, optional SKU, file or pasted text, delimiter, mode); the
  batch's merchant is always the product's merchant, and merchant staff only see their own
  products and SKUs (catalog/imports/ checks the file before anything is stored).
* A batch's "change" page is its preview: status, a progress bar that polls
  ``<id>/progress/`` (static/js/import-progress.js), counts, errors by reason and by row (masked
  codes only), the mode switch, Confirm and Cancel, and the error report as .xlsx. What the batch
  is doing is said by its state (``imports.status_message``, replaced by every poll), never by a
  flash message, which would outlive the state it describes; flash messages are kept for refusals.
* ``template.xlsx`` is the import template; the action "Re-run failed imports" queues the check
  again for failed batches.

Merchant scoping comes from MerchantScopedAdmin: every view here looks the batch up through
``get_queryset``, so another merchant's batch answers 404 on every URL, JSON and downloads included.
Batches are never deleted from admin: every run stays on record.
"""

from __future__ import annotations

import tempfile

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.scoping import MerchantScopedAdmin, scope_queryset
from catalog import imports
from catalog.models import ImportBatch, Product, Sku

PREVIEW_ERRORS = 100  # rows of the error table on the preview page; the report has them all

DELIMITERS = [
    ("", gettext_lazy("none: one code per line (CSV: comma)")),
    (",", gettext_lazy("comma ,")),
    ("\t", gettext_lazy("tab")),
    (" ", gettext_lazy("space")),
    ("----", "----"),
    ("|", "|"),
    (";", gettext_lazy("semicolon ;")),
    (":", gettext_lazy("colon :")),
    ("#", "#"),
]


class SkuChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Sku) -> str:
        return f"{obj.product.title} · {obj.label}"


class ImportUploadForm(forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.none(), label=gettext_lazy("product"))
    sku = SkuChoiceField(
        queryset=Sku.objects.none(),
        required=False,
        label=gettext_lazy("SKU"),
        help_text=gettext_lazy("Empty: each row names its denomination in the third column (面额)."),
    )
    file = forms.FileField(
        required=False,
        label=gettext_lazy("file"),
        help_text=gettext_lazy("Excel .xlsx (first sheet), .csv or .txt; at most %(size)s."),
    )
    text = forms.CharField(
        required=False,
        label=gettext_lazy("or paste codes"),
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60, "spellcheck": "false", "autocomplete": "off"}),
        help_text=gettext_lazy("One code per line, or code and password separated by the delimiter below."),
    )
    source = forms.ChoiceField(
        required=False,
        label=gettext_lazy("file type"),
        choices=[
            ("", gettext_lazy("detect from the content")),
            (ImportBatch.Source.XLSX, ImportBatch.Source.XLSX.label),
            (ImportBatch.Source.CSV, ImportBatch.Source.CSV.label),
        ],
    )
    delimiter = forms.ChoiceField(
        required=False,
        label=gettext_lazy("code/password delimiter"),
        choices=DELIMITERS,
        help_text=gettext_lazy("For pasted text and CSV; in a one-column sheet it splits “code----password” cells."),
    )
    mode = forms.ChoiceField(
        label=gettext_lazy("mode"),
        choices=ImportBatch.Mode.choices,
        initial=ImportBatch.Mode.ALL_OR_NOTHING,
        widget=forms.RadioSelect,
        help_text=gettext_lazy(
            "All or nothing: any error stops the whole import. You can still change this on the preview page."
        ),
    )  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = scope_queryset(
            Product.objects.order_by("title"), user=user, merchant_path="merchant"
        )
        self.fields["sku"].queryset = scope_queryset(
            Sku.objects.select_related("product").order_by("product__title", "sort_order", "id"),
            user=user,
            merchant_path="product__merchant",
        )
        self.fields["file"].help_text = self.fields["file"].help_text % {
            "size": filesizeformat(imports.max_upload_bytes())
        }

    def clean(self):
        data = super().clean()
        product, sku = data.get("product"), data.get("sku")
        if product is not None and sku is not None and sku.product_id != product.pk:
            self.add_error("sku", _("This SKU does not belong to the chosen product."))
        has_file, has_text = bool(data.get("file")), bool((data.get("text") or "").strip())
        if has_file == has_text and "file" not in self.errors:
            self.add_error(None, _("Upload a file or paste codes (one of the two)."))
        return data


@admin.register(ImportBatch)
class ImportBatchAdmin(MerchantScopedAdmin):
    merchant_path = "merchant"
    list_display = [
        "__str__", "product", "sku", "source", "status", "progress", "valid_rows", "error_rows", "imported_rows",
        "created_by", "created_at",
    ]  # fmt: skip
    list_filter = ["status", "source", "mode"]
    list_select_related = ["product", "sku__product", "created_by"]
    search_fields = ["filename"]
    actions = ["rerun_failed"]
    change_list_template = "admin/catalog/importbatch/change_list.html"

    # --- Permissions ----------------------------------------------------------------------------
    def has_delete_permission(self, request, obj=None):
        return False  # every run stays on record; cancel instead

    @admin.display(description=gettext_lazy("progress"))
    def progress(self, obj: ImportBatch) -> str:
        return f"{obj.progress_percent}%"

    # --- URLs -------------------------------------------------------------------------------------
    def get_urls(self):
        view = self.admin_site.admin_view
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("template.xlsx", view(self.template_view), name=f"{prefix}_template"),
            path("<path:object_id>/progress/", view(self.progress_view), name=f"{prefix}_progress"),
            path("<path:object_id>/confirm/", view(self.confirm_view), name=f"{prefix}_confirm"),
            path("<path:object_id>/cancel/", view(self.cancel_view), name=f"{prefix}_cancel"),
            path("<path:object_id>/mode/", view(self.mode_view), name=f"{prefix}_mode"),
            path("<path:object_id>/rerun/", view(self.rerun_view), name=f"{prefix}_rerun"),
            path("<path:object_id>/errors.xlsx", view(self.errors_view), name=f"{prefix}_errors"),
            *super().get_urls(),
        ]

    def _url(self, name: str, batch: ImportBatch | None = None) -> str:
        args = [batch.pk] if batch is not None else []
        return reverse(f"admin:catalog_importbatch_{name}", args=args, current_app=self.admin_site.name)

    def _batch(self, request, object_id) -> ImportBatch:
        """The batch if this user may see it: another merchant's batch is a 404, never a 403."""
        try:
            batch = self.get_queryset(request).select_related("product", "sku").filter(pk=int(object_id)).first()
        except (TypeError, ValueError):
            batch = None
        if batch is None:
            raise Http404
        if not self.has_view_or_change_permission(request, batch):
            raise PermissionDenied
        return batch

    def _changeable(self, request, object_id) -> ImportBatch:
        batch = self._batch(request, object_id)
        if not self.has_change_permission(request, batch):
            raise PermissionDenied
        return batch

    # --- Upload -------------------------------------------------------------------------------------
    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        too_big = False
        if request.method == "POST":
            try:
                form = ImportUploadForm(request.POST, request.FILES, user=request.user)
            except RequestDataTooBig:  # pasted text over DATA_UPLOAD_MAX_MEMORY_SIZE
                form, too_big = ImportUploadForm(user=request.user), True
            if too_big:
                form.is_valid()
                messages.error(request, _("The pasted text is too long. Upload it as a file instead."))
            elif form.is_valid():
                data = form.cleaned_data
                upload = data.get("file")
                try:
                    batch = imports.create_batch(
                        product=data["product"],
                        sku=data.get("sku"),
                        mode=data["mode"],
                        delimiter=data.get("delimiter") or "",
                        created_by=request.user,
                        upload=upload,
                        filename=upload.name if upload else "",
                        text=None if upload else data["text"],
                        source=data.get("source") or "",
                    )
                except imports.ImportRefused as exc:
                    form.add_error("file" if upload else "text", str(exc))
                else:
                    # No flash message: the batch page says what the batch is doing (status_message).
                    return HttpResponseRedirect(self._url("change", batch))
        else:
            form = ImportUploadForm(user=request.user, initial={"mode": ImportBatch.Mode.ALL_OR_NOTHING})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import card codes"),
            "form": form,
            "template_url": self._url("template"),
            "has_view_permission": self.has_view_permission(request),
        }
        return render(request, "admin/catalog/importbatch/upload.html", context)

    # --- Preview -------------------------------------------------------------------------------------
    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self._batch(request, object_id)
        errors = [
            {
                "row": error["row"],
                "reason": imports.REASONS.get(error["reason"], error["reason"]),
                "detail": imports.describe(error["reason"], error.get("detail", "")),
                "hint": error.get("hint", ""),
            }
            for error in (batch.errors or [])[:PREVIEW_ERRORS]
        ]
        by_reason = [
            (imports.REASONS.get(reason, reason), count)
            for reason, count in sorted((batch.error_counts or {}).items(), key=lambda item: -item[1])
        ]
        Status = ImportBatch.Status
        can_change = self.has_change_permission(request, batch)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import %(batch)s") % {"batch": batch},
            "batch": batch,
            "original": batch,
            "progress": imports.progress(batch),
            "errors": errors,
            "errors_shown": len(errors),
            "by_reason": by_reason,
            "can_confirm": can_change and batch.status == Status.READY and batch.valid_rows > 0,
            "confirm_blocked": batch.mode == ImportBatch.Mode.ALL_OR_NOTHING and batch.error_rows > 0,
            "can_cancel": can_change and batch.status in {Status.UPLOADED, Status.PARSING, Status.READY, Status.FAILED},
            "can_switch_mode": can_change and batch.status == Status.READY,
            "can_rerun": can_change and batch.status == Status.FAILED and bool(batch.upload_path),
            "modes": ImportBatch.Mode.choices,
            "progress_url": self._url("progress", batch),
            "confirm_url": self._url("confirm", batch),
            "cancel_url": self._url("cancel", batch),
            "mode_url": self._url("mode", batch),
            "rerun_url": self._url("rerun", batch),
            "errors_url": self._url("errors", batch),
            "changelist_url": self._url("changelist"),
        }
        return render(request, "admin/catalog/importbatch/preview.html", context)

    def progress_view(self, request, object_id):
        return JsonResponse(imports.progress(self._batch(request, object_id)))

    def confirm_view(self, request, object_id):
        return require_POST(self._confirm)(request, object_id)

    def _confirm(self, request, object_id):
        batch = self._changeable(request, object_id)
        try:
            if not imports.request_commit(batch=batch):  # on success the page shows the batch's state
                messages.warning(request, _("This import is not waiting for confirmation (any more)."))
        except imports.ImportRefused as exc:
            messages.error(request, str(exc))
        return HttpResponseRedirect(self._url("change", batch))

    def cancel_view(self, request, object_id):
        return require_POST(self._cancel)(request, object_id)

    def _cancel(self, request, object_id):
        batch = self._changeable(request, object_id)
        if not imports.cancel_batch(batch=batch):  # on success the page shows the batch's state
            messages.warning(request, _("This import can no longer be cancelled."))
        return HttpResponseRedirect(self._url("change", batch))

    def mode_view(self, request, object_id):
        return require_POST(self._mode)(request, object_id)

    def _mode(self, request, object_id):
        batch = self._changeable(request, object_id)
        try:
            changed = imports.set_mode(batch=batch, mode=request.POST.get("mode", ""))
        except imports.ImportRefused as exc:
            messages.error(request, str(exc))
        else:
            if changed:
                messages.success(request, _("Mode: %(mode)s.") % {"mode": batch.get_mode_display()})
            else:
                messages.warning(request, _("The mode can only change while the import waits for confirmation."))
        return HttpResponseRedirect(self._url("change", batch))

    def rerun_view(self, request, object_id):
        return require_POST(self._rerun)(request, object_id)

    def _rerun(self, request, object_id):
        batch = self._changeable(request, object_id)
        try:
            if not imports.rerun_batch(batch=batch):  # on success the page shows the batch's state
                messages.warning(request, _("Only a failed import can be re-run."))
        except imports.ImportRefused as exc:
            messages.error(request, str(exc))
        return HttpResponseRedirect(self._url("change", batch))

    # --- Downloads -------------------------------------------------------------------------------------
    def errors_view(self, request, object_id):
        batch = self._batch(request, object_id)
        out = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it)
        imports.write_error_report(batch=batch, out=out)
        out.seek(0)
        return FileResponse(out, as_attachment=True, filename=f"import-{batch.pk}-errors.xlsx")

    def template_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        product = None
        if request.GET.get("product", "").isdigit():
            products = scope_queryset(Product.objects.all(), user=request.user, merchant_path="merchant")
            product = products.filter(pk=int(request.GET["product"])).first()
        out = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it)
        imports.write_template(out=out, product=product)
        out.seek(0)
        return FileResponse(out, as_attachment=True, filename="kameng-codes-template.xlsx")

    # --- Actions --------------------------------------------------------------------------------------
    @admin.action(description=gettext_lazy("Re-run failed imports"), permissions=["change"])
    def rerun_failed(self, request, queryset):
        queued, skipped = 0, 0
        for batch in queryset.filter(status=ImportBatch.Status.FAILED):
            try:
                queued += imports.rerun_batch(batch=batch)
            except imports.ImportRefused as exc:
                skipped += 1
                messages.error(request, f"{batch}: {exc}")
        others = queryset.exclude(status=ImportBatch.Status.FAILED).count()
        if queued:
            messages.success(request, _("%(count)s imports are being checked again.") % {"count": queued})
        if others:
            messages.warning(
                request, _("%(count)s selected imports had not failed and were left alone.") % {"count": others}
            )
        if not queued and not skipped and not others:
            messages.info(request, _("Nothing to re-run."))
