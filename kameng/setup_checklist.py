"""The operators' setup checklist (/admin/setup/, linked from the admin index): what a new shop has
configured and what is missing, each with where to fix it. Operators only; other staff get 403.

It reads several apps (payments' providers, accounts' merchants, the catalog's stock and shop
settings), so it is part of kameng's composition root (with urls.py, settings.py…: the files that
may join the apps; kameng/tests/test_structure.py lists them).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.roles import is_operator

TEST_EMAIL_BACKENDS = {
    "kameng.outbox.OutboxBackend",
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}


@dataclass(frozen=True)
class Item:
    key: str
    title: str
    done: bool
    detail: str
    fix: str  # what to do when not done
    url: str = ""  # where to do it (an admin page); empty for the environment


def _local(url: str) -> bool:
    return any(host in url for host in ("://127.0.0.1", "://localhost", "://[::1]", "://0.0.0.0"))


def items() -> list[Item]:
    from accounts.models import Merchant
    from catalog.models import CardCode, Product, ShopSettings
    from payments.providers import alipay, wechat

    row = ShopSettings.objects.filter(pk=1).first()
    settings_url = reverse("admin:catalog_shopsettings_changelist")
    alipay_on = alipay.AlipayProvider.is_configured()
    wechat_on = wechat.WeChatPayProvider.is_configured()
    providers = [name for name, on in ((_("Alipay"), alipay_on), (_("WeChat Pay"), wechat_on)) if on]
    backend = settings.EMAIL_BACKEND
    stocked = (
        Product.objects.listed()
        .filter(skus__is_active=True, skus__codes__status=CardCode.Status.AVAILABLE)
        .values("pk")
        .first()
    )
    merchant = Merchant.objects.order_by("pk").first()
    return [
        Item(
            "payments",
            _("Payment keys"),
            bool(providers),
            ", ".join(providers) if providers else _("Only the sandbox and wallet balance can take payments."),
            _(
                "Set ALIPAY_APP_ID, ALIPAY_APP_PRIVATE_KEY_PATH and ALIPAY_PUBLIC_KEY_PATH, or the WECHATPAY_… "
                "settings, in the environment and restart; `manage.py check` reports what is wrong."
            ),
        ),
        Item(
            "email",
            _("E-mail"),
            backend not in TEST_EMAIL_BACKENDS,
            backend.rsplit(".", 1)[-1] if backend not in TEST_EMAIL_BACKENDS else _("E-mails are only kept locally."),
            _("Set EMAIL_URL (e.g. smtp+tls://user:password@smtp.example.com:587) in the environment and restart."),
        ),
        Item(
            "site_url",
            _("Public address (SITE_URL)"),
            bool(settings.SITE_URL) and not _local(settings.SITE_URL),
            settings.SITE_URL,
            _("Set SITE_URL to the shop's public https address: e-mail links and payment returns use it."),
        ),
        Item(
            "merchant",
            _("First merchant"),
            merchant is not None,
            str(merchant) if merchant else _("No merchant yet."),
            _("Add the merchant whose goods the shop sells."),
            reverse("admin:accounts_merchant_add")
            if merchant is None
            else reverse("admin:accounts_merchant_changelist"),
        ),
        Item(
            "product",
            _("First product in stock"),
            stocked is not None,
            _("A listed product has codes for sale.") if stocked else _("No listed product has codes in stock."),
            _("Add a product with a denomination, list it and import its card codes."),
            reverse("admin:catalog_product_add") if stocked is None else reverse("admin:catalog_product_changelist"),
        ),
        Item(
            "icp",
            _("ICP filing number"),
            bool(row and row.icp_number),
            row.icp_number if row and row.icp_number else _("Not set: shops served in mainland China need one."),
            _("Enter the ICP number (and the public-security filing) in the shop settings."),
            settings_url,
        ),
        Item(
            "logo",
            _("Logo"),
            bool(row and row.logo),
            _("Uploaded.") if row and row.logo else _("The shop shows its name only."),
            _("Upload the logo in the shop settings: the favicon and app icons are made from it."),
            settings_url,
        ),
    ]


def may_see(user) -> bool:
    return is_operator(user)


def view(request, admin_site):
    if not may_see(request.user):
        raise PermissionDenied
    found = items()
    context = {
        **admin_site.each_context(request),
        "title": _("Setup checklist"),
        "items": found,
        "done_count": sum(item.done for item in found),
        "total": len(found),
    }
    return TemplateResponse(request, "admin/setup_checklist.html", context)
