"""``shop``: the shop's settings for every template (catalog/shop.py), read only when a template uses
them — admin pages, which do not, pay nothing."""

from django.utils.functional import SimpleLazyObject


def shop(request):
    from catalog.shop import context

    return {"shop": SimpleLazyObject(lambda: context(request))}
