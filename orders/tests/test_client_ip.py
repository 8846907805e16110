"""Behind the TLS proxy every shopper arrives from the proxy's address: per-IP rules must count the
shopper the proxy names, and only when the peer is one of our proxies."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import Client
from django.urls import reverse

from orders.models import Order

pytestmark = pytest.mark.django_db(transaction=True)

PROXY = "10.0.0.2"


@pytest.fixture(autouse=True)
def _proxies(settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    settings.TRUSTED_PROXY_COUNT = 0
    settings.MAX_UNPAID_ORDERS = 3


def guest_checkout(browser: Client, sku, email: str):
    browser.post(reverse("orders:cart_add"), {"sku": sku.pk, "quantity": 1})
    page = browser.get(reverse("orders:checkout"))
    key = page.context["form"]["idempotency_key"].value()
    return browser.post(reverse("orders:checkout"), {"idempotency_key": key, "email": email})


def test_five_guests_through_one_proxy_each_get_their_order(stocked_sku):
    for n in range(5):
        browser = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"198.51.100.{n + 1}")
        response = guest_checkout(browser, stocked_sku, f"guest{n}@example.com")
        assert response.status_code == 302, n
    orders = Order.objects.order_by("pk")
    assert orders.count() == 5
    assert [o.client_ip for o in orders] == [f"198.51.100.{n + 1}" for n in range(5)]


def test_a_forged_header_from_an_untrusted_peer_counts_against_the_peer(stocked_sku):
    attacker = "203.0.113.9"
    statuses = []
    for n in range(4):
        browser = Client(REMOTE_ADDR=attacker, HTTP_X_FORWARDED_FOR=f"198.51.100.{n + 1}")
        browser.cookies["django_language"] = "en"
        statuses.append(guest_checkout(browser, stocked_sku, f"forger{n}@example.com").status_code)
    assert statuses == [302, 302, 302, 200]  # the fourth unpaid order from one address is refused
    assert set(Order.objects.values_list("client_ip", flat=True)) == {attacker}
