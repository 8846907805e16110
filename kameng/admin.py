"""Admin of the project-wide parts: the audit trail's entries (kameng/audit.py)."""

from django.contrib import admin

from kameng import audit

audit.register(admin.site)
