"""Back office of the home page (catalog/home.py): carousel slides, home sections and the trade
templates' page. Operators only (``OperatorOnlyAdmin``): merchant staff neither see nor open them.

A slide's picture is sniffed and re-encoded on upload (``home.process_slide``); saving a slide or a
section drops the home page's cache (signals in ``home.connect``), so the change shows at once.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.roles import is_operator
from accounts.scoping import OperatorOnlyAdmin
from catalog import home, trade_templates
from catalog.models import HomeSection, HomeSlide


class HomeSlideForm(forms.ModelForm):
    class Meta:
        model = HomeSlide
        fields = ["title", "title_en", "image", "link_url", "starts_at", "ends_at", "sort_order", "enabled"]
        field_classes = {"image": forms.FileField}  # our own sniffing and messages, not the generic ones

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._small = None
        self.fields["image"].help_text = _("JPEG, PNG, WebP or GIF, at least 600 × 200; cropped to 3:1.")

    def clean_image(self):
        image = self.cleaned_data.get("image")
        if isinstance(image, UploadedFile):
            picture = home.process_slide(image)
            self._small = picture.small
            return picture.large
        if not image:
            raise forms.ValidationError(_("Upload the slide's picture."), code="required")
        return image

    def save(self, commit=True):
        slide = super().save(commit=False)
        if self._small is not None:
            slide.image_small.save(self._small.name, self._small, save=False)
        if commit:
            slide.save()
        return slide


@admin.register(HomeSlide)
class HomeSlideAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    form = HomeSlideForm
    list_display = ["thumbnail", "title", "title_en", "state", "starts_at", "ends_at", "sort_order", "enabled"]
    list_display_links = ["thumbnail", "title"]
    list_editable = ["sort_order", "enabled"]
    readonly_fields = ["preview"]
    fields = [
        "title", "title_en", "image", "preview", "link_url", "starts_at", "ends_at", "sort_order", "enabled",
    ]  # fmt: skip

    @admin.display(description=_("picture"))
    def thumbnail(self, slide):
        if not slide.image:
            return "—"
        style = "width: 150px; height: 50px; object-fit: cover"
        return format_html('<img src="{}" alt="" style="{}">', slide.image.url, style)

    @admin.display(description=_("preview"))
    def preview(self, slide):
        if not slide.image:
            return "—"
        return format_html('<img src="{}" alt="" style="max-width: 480px; width: 100%; height: auto">', slide.image.url)

    @admin.display(description=_("state"))
    def state(self, slide):
        now = timezone.now()
        if not slide.enabled:
            return gettext("hidden")
        if slide.starts_at and now < slide.starts_at:
            return gettext("scheduled")
        if slide.ends_at and now >= slide.ends_at:
            return gettext("ended")
        return gettext("shown")


class HomeSectionForm(forms.ModelForm):
    class Meta:
        model = HomeSection
        fields = ["kind", "title", "title_en", "category", "skus", "limit", "sort_order", "enabled"]

    def clean(self):
        data = super().clean()
        if data.get("kind") == HomeSection.Kind.CATEGORY and not data.get("category"):
            self.add_error("category", _("Choose the category this block shows."))
        return data


@admin.register(HomeSection)
class HomeSectionAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    form = HomeSectionForm
    list_display = ["title", "title_en", "kind", "category", "limit", "sort_order", "enabled"]
    list_editable = ["limit", "sort_order", "enabled"]
    list_filter = ["kind", "enabled"]
    autocomplete_fields = ["skus"]
    list_select_related = ["category"]
    change_list_template = "admin/catalog/homesection/change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view(self.template_view)
        return [path("template/", view, name="catalog_homesection_template"), *super().get_urls()]

    def template_view(self, request):
        """The trade templates: pick one, see what it adds, apply it (POST)."""
        if not is_operator(request.user):
            raise PermissionDenied
        if request.method == "POST":
            name = request.POST.get("template", "")
            if name not in trade_templates.TEMPLATES:
                messages.error(request, gettext("Choose one of the templates."))
            else:
                applied = trade_templates.apply(name, with_slides=bool(request.POST.get("slides")))
                if applied.anything:
                    messages.success(
                        request,
                        gettext(
                            "%(template)s: added %(categories)s categories, %(sections)s sections, %(slides)s slides."
                        )
                        % {
                            "template": trade_templates.TEMPLATES[name].label,
                            "categories": applied.categories,
                            "sections": applied.sections,
                            "slides": applied.slides,
                        },
                    )
                else:
                    messages.info(request, gettext("Everything this template adds is already there: nothing changed."))
            return redirect(reverse("admin:catalog_homesection_template"))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Apply a trade template"),
            "opts": self.model._meta,
            "templates": trade_templates.TEMPLATES.values(),
            "fresh": not HomeSection.objects.exists(),
        }
        return TemplateResponse(request, "admin/catalog/homesection/template.html", context)
