"""The shop's own pages: footer pages (/pages/<slug>/), customer service (/help/contact/), the web
app manifest (/manifest.webmanifest) and dismissing the announcement bar (a form, no script)."""

from __future__ import annotations

import json

from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import path
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from catalog import shop
from catalog.models import FooterPage


def page(request, slug: str):
    found = FooterPage.objects.filter(slug=slug, is_published=True).first()
    if found is None:
        raise Http404
    english = translation.get_language() == "en"
    title = found.title_en if english and found.title_en else found.title
    body = found.body_en if english and found.body_en else found.body
    body = mark_safe(shop.sanitise(body))  # noqa: S308 - nh3's output (and cleaned on save as well)
    return render(request, "shop/page.html", {"page": found, "title": title, "body": body})


def contact(request):
    return render(request, "shop/contact.html")


def manifest(request):
    data = shop.context(request)
    icons = []
    for size in shop.ICON_SIZES:
        src = data["icons"].get(size) or static(f"img/icon-{size}.png")
        icons.append({"src": src, "sizes": f"{size}x{size}", "type": "image/png", "purpose": "any"})
    body = {
        "name": data["name"],
        "short_name": data["name"][:12],
        "lang": translation.get_language(),
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "theme_color": data["brand"],
        "background_color": "#ffffff",
        "icons": icons,
    }
    response = HttpResponse(json.dumps(body, ensure_ascii=False), content_type="application/manifest+json")
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_POST
def dismiss_notice(request):
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    response = HttpResponseRedirect(target)
    version = shop.notice_version(shop.snapshot())
    response.set_cookie(shop.NOTICE_COOKIE, version, max_age=30 * 24 * 3600, samesite="Lax", httponly=True)
    return response


app_name = "shop"
urlpatterns = [
    path("pages/<slug:slug>/", page, name="page"),
    path("help/contact/", contact, name="contact"),
    path("manifest.webmanifest", manifest, name="manifest"),
    path("notice/dismiss/", dismiss_notice, name="dismiss_notice"),
]
