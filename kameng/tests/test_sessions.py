"""Sessions live in Redis (the cache) when REDIS_URL is set, as in the test suite and production."""

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import cache

from catalog.models import Sku

pytestmark = pytest.mark.django_db


def test_a_cart_is_kept_in_redis_not_in_postgresql(client, demo_shop):
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.cache"
    sku = Sku.objects.filter(product__slug="steam-wallet", is_active=True).order_by("pk").first()
    response = client.post("/orders/cart/add/", {"sku": sku.pk, "quantity": 2})
    assert response.status_code == 302

    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    stored = cache.get(f"django.contrib.sessions.cache{key}")
    assert stored["kameng_cart"] == [{"sku": sku.pk, "qty": 2}]
    assert not Session.objects.exists()
    assert sku.label in client.get("/orders/cart/").content.decode()  # read back on the next request
