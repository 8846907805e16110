"""The first-order discount under concurrent checkouts on PostgreSQL: one person, one discount."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from catalog import codes
from catalog import services as catalog_services
from catalog.models import Sku
from marketing.models import FirstOrderOffer, FirstOrderRedemption
from orders import services
from orders.models import Order
from orders.tests.conftest import place

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_concurrent_first_orders_by_one_email_get_the_discount_once(demo_shop, monkeypatch):
    sku = Sku.objects.create(product=demo_shop.products["steam-wallet"], label="R", price_fen=5_000)
    catalog_services.add_codes(sku=sku, secrets=[codes.Secret(f"R-{i}") for i in range(4)])
    FirstOrderOffer.objects.create(name="新客", kind="fixed", amount_fen=500, funded_by="merchant")
    # Both tabs are quoted before either places (the quote sees no redemption), then insert at once.
    from marketing import offers

    quoted = threading.Barrier(2)
    original = offers.first_order_rule

    def rule_then_wait(quote):
        original(quote)
        quoted.wait(timeout=30)

    from orders import pricing

    monkeypatch.setattr(
        pricing, "RULES", [e._replace(rule=rule_then_wait) if e.name == "first_order" else e for e in pricing.RULES]
    )
    results: list = [None, None]

    def buy(index):
        try:
            results[index] = place(sku, email="Same@Example.com")
        except services.CheckoutError as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    refused = [r for r in results if isinstance(r, services.CheckoutError)]
    assert len(refused) == 1 and "已经使用过首单优惠" in str(refused[0])
    assert list(Order.objects.values_list("total_fen", flat=True)) == [4_500]
    assert FirstOrderRedemption.objects.filter(status="held").count() == 1
