"""Favourites pages under /me/favourites/ (joined to the user center's ``accounts`` namespace in
kameng/urls.py, as the wallet is) and the add/remove buttons of product and list pages.

The buttons are forms (POST with the CSRF token) that work without JavaScript and redirect back to
the page they were on; ``static/js/favourites.js`` sends them with ``fetch`` and swaps the button
instead (these views answer JSON when asked for it). A guest's click is remembered in the session
and they are sent to sign in; once signed in (or signed up) the favourite is added and they land
back on the page they clicked on (:func:`on_logged_in`).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from catalog import favourites
from catalog.models import Product

PAGE_SIZE = 20


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _back(request, product_id: int) -> str:
    """Where a button's form returns: the page it was on (``next``), if it is ours."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    product = Product.objects.filter(pk=product_id).only("slug").first()
    return product.get_absolute_url() if product else reverse("accounts:favourites")


def _answer(request, product_id: int, *, favourited: bool, message: str):
    if _wants_json(request):
        return JsonResponse({"favourited": favourited, "message": message})
    messages.success(request, message)
    return HttpResponseRedirect(_back(request, product_id))


@require_POST
def add(request, product_id: int):
    if not request.user.is_authenticated:
        if not Product.objects.listed().filter(pk=product_id).exists():
            raise Http404
        favourites.remember_for_sign_in(session=request.session, product_id=product_id)
        login = f"{reverse('account_login')}?{urlencode({'next': _back(request, product_id)})}"
        if _wants_json(request):
            return JsonResponse({"login_url": login}, status=401)
        return HttpResponseRedirect(login)
    try:
        favourites.add(user=request.user, product_id=product_id)
    except Product.DoesNotExist:
        raise Http404 from None
    return _answer(request, product_id, favourited=True, message=_("Added to your favourites."))


@login_required
@require_POST
def remove(request, product_id: int):
    favourites.remove(user=request.user, product_id=product_id)
    return _answer(request, product_id, favourited=False, message=_("Removed from your favourites."))


@login_required
@require_POST
def notify(request, product_id: int):
    """Switch the price-drop and back-in-stock e-mails of one of the user's favourites."""
    wanted = request.POST.get("notify") == "1"
    if not favourites.set_notify(user=request.user, product_id=product_id, notify=wanted, language=get_language()):
        raise Http404
    message = (
        _("We will e-mail you when it gets cheaper or is back in stock.")
        if wanted
        else _("No more e-mails about this product.")
    )
    if _wants_json(request):
        return JsonResponse({"notify": wanted, "message": message})
    messages.success(request, message)
    return HttpResponseRedirect(_back(request, product_id))


@login_required
def mine(request):
    """The user's favourites with price and stock now, paginated (a count and one query a page)."""
    page = Paginator(favourites.for_page(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    for favourite in page.object_list:
        favourite.state = favourites.state_of(favourite)
    return render(request, "catalog/favourites.html", {"page": page, "State": favourites.State})


def on_logged_in(sender, request, user, **kwargs) -> None:
    """``user_logged_in``: add the favourites the visitor clicked as a guest."""
    if request is None or not hasattr(request, "session"):
        return
    if favourites.add_remembered(user=user, session=request.session):
        messages.success(request, _("Added to your favourites."))


urlpatterns = [
    path("favourites/", mine, name="favourites"),
    path("favourites/<int:product_id>/add/", add, name="favourite_add"),
    path("favourites/<int:product_id>/remove/", remove, name="favourite_remove"),
    path("favourites/<int:product_id>/notify/", notify, name="favourite_notify"),
]
