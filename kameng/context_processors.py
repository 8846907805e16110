from django.conf import settings


def site(request):
    session = getattr(request, "session", None)
    # The cart lives in the session (orders/cart.py); counting it costs no query beyond the session.
    cart = session.get("kameng_cart", []) if session is not None else []
    return {"SHOP_NAME": settings.SHOP_NAME, "DEBUG": settings.DEBUG, "cart_count": len(cart)}
