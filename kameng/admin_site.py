"""The back office's admin site: Django's, with a limited sign-in and a scoped "view on site".

Installed in place of ``django.contrib.admin`` (``INSTALLED_APPS`` names :class:`AdminConfig`), so
``admin.site`` and every ``@admin.register`` use :class:`KamengAdminSite`.

* **Sign-in** (``/admin/login/``): failures are limited per account (the e-mail typed) and per
  client IP (``ADMIN_LOGIN_RATE_LIMITS``, kameng/admin_auth.py). A locked account or address gets
  the form back with a message saying how long to wait, answered 429; the right password during the
  lock does not sign in.
* **View on site** (``/admin/r/<content type>/<id>/``): Django's shortcut redirects any staff user
  to any object's public URL — an order's URL carries its number, which with the query secret is
  what guards a guest's order. Here it answers only for objects the user's own admin would show
  (the model's admin grants view or change and its ``get_queryset`` — merchant-scoped for merchant
  staff, see accounts/scoping.py — holds the object); anything else is a 404.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig
from django.contrib.admin.utils import unquote
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import Http404
from django.urls import URLPattern


class KamengAdminSite(admin.AdminSite):
    site_header = "Kameng 卡盟"
    site_title = "Kameng 卡盟"

    @property
    def login_form(self):
        # Imported late: this module is loaded with INSTALLED_APPS, before models are ready.
        from kameng.admin_auth import AdminLoginForm

        return AdminLoginForm

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if form is not None and form.has_error(NON_FIELD_ERRORS, code="too_many_attempts"):
            response.status_code = 429
        return response

    def get_urls(self):
        from django.urls import path

        from kameng import setup_checklist

        urls = super().get_urls()
        urls.insert(
            0, path("setup/", self.admin_view(lambda request: setup_checklist.view(request, self)), name="setup")
        )
        for index, pattern in enumerate(urls):
            if isinstance(pattern, URLPattern) and pattern.name == "view_on_site":
                view = self.admin_view(self.view_on_site)
                urls[index] = URLPattern(pattern.pattern, view, pattern.default_args, pattern.name)
        return urls

    def index(self, request, extra_context=None):
        from kameng import setup_checklist

        extra_context = {**(extra_context or {}), "show_setup_checklist": setup_checklist.may_see(request.user)}
        return super().index(request, extra_context)

    def view_on_site(self, request, content_type_id, object_id):
        """Django's shortcut, for objects this staff user may see in admin only."""
        from django.contrib.contenttypes.models import ContentType
        from django.contrib.contenttypes.views import shortcut

        try:
            model = ContentType.objects.get_for_id(int(content_type_id)).model_class()
        except (ValueError, ContentType.DoesNotExist):
            raise Http404 from None
        model_admin = self._registry.get(model)
        if model_admin is None or not model_admin.has_view_or_change_permission(request):
            raise Http404
        try:
            visible = model_admin.get_queryset(request).filter(pk=unquote(object_id)).exists()
        except (ValueError, ValidationError):
            visible = False
        if not visible:
            raise Http404
        return shortcut(request, content_type_id, object_id)


class AdminConfig(DjangoAdminConfig):
    default_site = "kameng.admin_site.KamengAdminSite"
