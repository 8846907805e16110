"""The cards of the user-center home (/me/). accounts sits below orders, payments and marketing
(docs/ARCHITECTURE.md), so it cannot ask them for their numbers; instead each app registers a card
here from its ``AppConfig.ready()`` — a template and a function that returns its context — and
the home renders whatever is registered, in slot order. An app that is not installed registers
nothing, so its card is simply absent.

Slots (lower first), so later cards find their place without touching the page:

* ``WALLET`` (100): balance, top-up, history — payments.
* ``MEMBERSHIP`` (150): the annual membership, its expiry and a link to buy or renew — orders.
* ``POINTS`` (200): points balance and level with progress to the next — accounts (``loyalty_card.py``).
* ``ORDERS`` (300): counts of orders by status — orders.
* ``FAVOURITES`` (350): how many favourites, a link to them — catalog.
* ``LEADERBOARD`` (370): this month's top buyers and the user's place among them — orders.
* ``COUPONS`` (400): coupons — reserved for marketing.
* ``INVITE`` (410): invite friends, commission available and pending — marketing (``usercenter.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps

WALLET = 100
MEMBERSHIP = 150
POINTS = 200
ORDERS = 300
FAVOURITES = 350
LEADERBOARD = 370
COUPONS = 400
INVITE = 410


@dataclass(frozen=True)
class Card:
    name: str
    app: str  # the registering app's label: the card shows only while that app is installed
    template: str
    context: Callable[[Any], dict[str, Any]]  # request -> the card's template context
    order: int


_cards: dict[str, Card] = {}


def register(*, name: str, app: str, template: str, context: Callable[[Any], dict[str, Any]], order: int) -> None:
    """Register (or replace, so ready() may run twice) the card ``name`` of ``app``."""
    _cards[name] = Card(name=name, app=app, template=template, context=context, order=order)


def unregister(name: str) -> None:
    _cards.pop(name, None)


def cards() -> list[Card]:
    """The registered cards of installed apps in slot order (then by name, so equal slots are stable)."""
    installed = [card for card in _cards.values() if apps.is_installed(card.app)]
    return sorted(installed, key=lambda card: (card.order, card.name))


@dataclass(frozen=True)
class Rendered:
    card: Card
    context: dict[str, Any]


def render_cards(request) -> list[Rendered]:
    """Each card with its context for ``request`` (the page includes ``card.template``)."""
    return [Rendered(card=card, context=card.context(request)) for card in cards()]
