"""The favourites card of the user-center home (accounts/usercenter.py): how many products the user
keeps, a link to the list."""

from __future__ import annotations

from django.urls import reverse

from accounts import usercenter
from catalog import favourites


def card_context(request) -> dict:
    return {"count": favourites.count(user=request.user), "url": reverse("accounts:favourites")}


def register() -> None:
    usercenter.register(
        name="favourites",
        app="catalog",
        template="catalog/usercenter_card.html",
        context=card_context,
        order=usercenter.FAVOURITES,
    )
