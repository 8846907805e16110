"""Who may see an order page: its signed-in buyer, or the signed-out browser session that placed it
or unlocked it with the order's query secret. Nobody else — not even with the link."""

from __future__ import annotations

import uuid

from django.core import signing
from django.core.cache import cache
from django.utils.crypto import constant_time_compare, salted_hmac

from orders.models import Order

SESSION_KEY = "kameng_orders"
REMEMBERED = 50


def remember(request, order: Order) -> None:
    known = [pk for pk in request.session.get(SESSION_KEY, []) if pk != order.pk]
    request.session[SESSION_KEY] = [order.pk, *known][:REMEMBERED]


def can_view(request, order: Order) -> bool:
    """A buyer's order opens for that buyer; a guest order for the browser session that placed or
    unlocked it. A guest order claimed into an account (services.claim_guest_orders) is the
    account's: the query secret no longer unlocks it, and a session signed in as someone else does
    not see it; only the signed-out browser that already had it keeps it (a guest mid-checkout who
    verified the address on another device can still pay)."""
    user = getattr(request, "user", None)
    signed_in = bool(user and user.is_authenticated)
    if order.buyer_id is not None and signed_in:
        return user.pk == order.buyer_id
    return order.pk in request.session.get(SESSION_KEY, [])


# -- links sent to the buyer ---------------------------------------------------------------------------
# A guest's delivery SMS carries a link that opens the order on the phone that got it without the
# query secret (typing a secret into a phone from a text is what the text was meant to spare). The
# link is signed (order number, salt, SECRET_KEY) and lasts LINK_MAX_AGE; opening it remembers the
# order in that browser's session like the secret would, and the page then drops the token from
# its address. A buyer's own order is not opened by a link: the buyer signs in.

LINK_SALT = "kameng.orders.guest-link"
LINK_MAX_AGE = 7 * 24 * 3600


def link_token(order: Order) -> str:
    """The signed value without the order number it signs ("<timestamp>:<signature>")."""
    return signing.TimestampSigner(salt=LINK_SALT).sign(order.number)[len(order.number) + 1 :]


def guest_link_query(order: Order) -> str:
    """``?t=…`` for the order page's URL, or "" when the order has a buyer (who signs in instead)."""
    return "" if order.buyer_id is not None else f"?t={link_token(order)}"


def open_by_link(request, order: Order, token: str) -> bool:
    """Remember ``order`` in this session if ``token`` is its valid, unexpired guest link."""
    if order.buyer_id is not None or not token:
        return False
    try:
        signing.TimestampSigner(salt=LINK_SALT).unsign(f"{order.number}:{token}", max_age=LINK_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return False
    remember(request, order)
    return True


# -- checkout forms -----------------------------------------------------------------------------
# A checkout form's idempotency key is a nonce plus a MAC of the nonce and the browser's session
# key. A form sent again finds the order its key placed; the MAC tells whether the sender is the
# browser the form was rendered for — also while the first submission is still running and has not
# yet written the order into the session (two clicks at once) — and a stranger replaying someone
# else's form is not.


def _mac(request, nonce: str) -> str:
    return salted_hmac("kameng.orders.checkout-key", f"{nonce}:{request.session.session_key}").hexdigest()[:16]


def new_checkout_key(request) -> str:
    if not request.session.session_key:
        request.session.save()  # a key to bind to (the checkout page has a cart, so a session)
    nonce = uuid.uuid4().hex
    return f"{nonce}.{_mac(request, nonce)}"


def owns_checkout_key(request, key: str) -> bool:
    nonce, _, mac = key.partition(".")
    return bool(nonce and mac and request.session.session_key) and constant_time_compare(mac, _mac(request, nonce))


def may_resume(request, order: Order, key: str) -> bool:
    """Whether the sender of checkout form ``key``, which placed ``order``, may go on to that order
    (and is let in: remembered in the session, like the placing request)."""
    if can_view(request, order):
        return True
    if order.buyer_id is None and owns_checkout_key(request, key):
        remember(request, order)
        return True
    return False


# -- the generated query secret, shown once -----------------------------------------------------
# Kept in the cache (never in the database in clear) under the order and this browser's session
# key until the order page shows it. Not in the session itself: two submissions of one form at
# once both save the session, and the one that loses the race must not erase it.
SECRET_SHOWN_WITHIN = 3600  # seconds


def _secret_key(request, order: Order) -> str:
    return f"orders:secret:{order.pk}:{request.session.session_key}"


def keep_secret_to_show(request, order: Order, secret: str) -> None:
    if not request.session.session_key:
        request.session.save()
    cache.set(_secret_key(request, order), secret, SECRET_SHOWN_WITHIN)


def pop_secret_to_show(request, order: Order) -> str | None:
    if order.buyer_id is not None or not request.session.session_key:
        return None  # a signed-in buyer's order has no query secret
    key = _secret_key(request, order)
    secret = cache.get(key)
    if secret is not None:
        cache.delete(key)
    return secret
