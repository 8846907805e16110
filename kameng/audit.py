"""The audit trail of back-office changes, on django-auditlog.

* **What is recorded**: every create, change and delete of the models listed in
  ``settings.AUDITLOG_INCLUDE_TRACKING_MODELS`` (today the promotions; tracking one more model is one
  line there) — who (the signed-in user, set by :class:`AuditMiddleware`; "system" for tasks and
  commands), when, and each changed field's value before and after. A child row (a spend tier of a
  满减 promotion) names its parent in ``additional_data["parent"]`` (``get_additional_data()`` on
  the model) so the parent's history shows it too.
* **Append-only**: the admin never adds, changes or deletes an entry, not even for superusers
  (:class:`LogEntryAdmin`), and the database refuses UPDATE and DELETE on the table
  (marketing/migrations/0008_backoffice.py, kameng/appendonly.py). Staff accounts that made changes
  are deactivated, not deleted (deleting one would have to update its entries).
* **Where it is shown**: the "History" button of a tracked model's change page (admins that mix in
  :class:`AuditHistoryMixin`, scoped like the admin: a merchant sees the history of its own rows
  only), and the searchable list of all entries in admin ("Audit log", operators only).
* **The client address** is the one of kameng/clientip.py (the only reader of forwarded headers).
"""

from __future__ import annotations

from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.middleware import AuditlogMiddleware
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import PAGE_VAR
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from kameng.clientip import client_ip


def is_operator(user) -> bool:
    """accounts.roles.is_operator, by the permission's name (kameng sits below accounts)."""
    return bool(user.is_active and (user.is_superuser or user.has_perm("accounts.operate_platform")))


class AuditMiddleware(AuditlogMiddleware):
    """auditlog's middleware (the actor of every change in the request), with the client address from
    kameng/clientip.py instead of auditlog's own reading of the proxy headers, and no client port (a
    header anyone can set)."""

    @staticmethod
    def _get_remote_addr(request):
        return client_ip(request)

    @staticmethod
    def _get_remote_port(request):
        return None


def parent_key(obj) -> str:
    """How a child row names ``obj`` in its entries' ``additional_data["parent"]``."""
    return f"{obj._meta.label_lower}:{obj.pk}"


def entries_for(obj):
    """The entries of ``obj`` and of its children (newest first)."""
    own = LogEntry.objects.get_for_object(obj).values("pk")
    return (
        LogEntry.objects.filter(Q(pk__in=own) | Q(additional_data__parent=parent_key(obj)))
        .select_related("actor", "content_type")
        .order_by("-timestamp", "-pk")
    )


class AuditHistoryMixin:
    """The change page's "History" shows the audit trail of the object (and its children) instead of
    Django's admin log. The object comes through ``get_object`` (the admin's scoped queryset), so
    another merchant's row answers 404."""

    audit_history_per_page = 20

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_or_change_permission(request, obj):
            raise Http404
        paginator = self.get_paginator(request, entries_for(obj), self.audit_history_per_page)
        page_obj = paginator.get_page(request.GET.get(PAGE_VAR, 1))
        for entry in page_obj:
            # A list, not ``changes_display_dict.items`` in the template: a field whose label is
            # "items" would be looked up as the dict's key first.
            entry.change_rows = list(entry.changes_display_dict.items())
        context = {
            **self.admin_site.each_context(request),
            "title": _("Change history: %s") % obj,
            "subtitle": None,
            "module_name": str(capfirst(self.model._meta.verbose_name_plural)),
            "page_range": paginator.get_elided_page_range(page_obj.number),
            "page_var": PAGE_VAR,
            "pagination_required": paginator.count > self.audit_history_per_page,
            "object": obj,
            "opts": self.model._meta,
            "log_entries": page_obj,
            "page_obj": page_obj,
            "object_content_type_id": ContentType.objects.get_for_model(self.model).pk,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/audit/object_history.html", context)


class LogEntryAdmin(AuditlogLogEntryAdmin):
    """Every entry, searchable (object, changed values, the actor's e-mail) and filtered by action and
    kind of object. Operators only; read-only for everyone (append-only)."""

    search_fields = ["object_repr", "changes", "actor__email", "actor_email"]
    list_display = ["created", "resource_url", "action", "msg_short", "user_url"]

    def has_module_permission(self, request):
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}  # no "delete selected"

    @admin.display(description=_("Changes"))
    def msg_short(self, obj):
        if obj.action in (LogEntry.Action.DELETE, LogEntry.Action.ACCESS):
            return ""
        fields = list(obj.changes_dict)
        shown = ", ".join(fields[:6]) + (" …" if len(fields) > 6 else "")
        return ngettext("%(count)d field: %(fields)s", "%(count)d fields: %(fields)s", len(fields)) % {
            "count": len(fields),
            "fields": shown,
        }

    @admin.display(description=_("User"))
    def user_url(self, obj):
        if obj.actor_id is None and not obj.actor_email:
            return _("system")
        return super().user_url(obj) if obj.actor_id else obj.actor_email


def register(site) -> None:
    if site.is_registered(LogEntry):
        site.unregister(LogEntry)
    site.register(LogEntry, LogEntryAdmin)
