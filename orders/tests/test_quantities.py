"""Quantities are checked where the buyer chooses them (issue 11): adding to the cart, changing a
line, "buy now" and the checkout page — against the product's per-order limit (shared by its
denominations) and the codes left — with a message that names the limit or the stock, and the
limits shown next to the inputs. The cart shows line totals and a remove button."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.models import Sku
from orders import views
from orders.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client():
    browser = Client()
    browser.cookies["django_language"] = "en"
    return browser


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def add(client, sku: Sku, quantity) -> None:
    """Add to the cart and see the cart page (which shows, and so uses up, the messages)."""
    assert (
        client.post(reverse("orders:cart_add"), {"sku": sku.pk, "quantity": quantity}, follow=True).status_code == 200
    )


def cart_lines(client) -> list[tuple[int, int]]:
    return [(line.sku.pk, line.quantity) for line in client.get(reverse("orders:cart")).context["lines"]]


def set_cart(client, entries: list[tuple[int, int]]) -> None:
    """A cart as a session may hold it from an earlier visit (stock and limits have moved since)."""
    session = client.session
    session["kameng_cart"] = [{"sku": sku_id, "qty": qty} for sku_id, qty in entries]
    session.save()


def void(sku: Sku, keep: int) -> None:
    """Withdraw all but ``keep`` of the SKU's codes (the stock goes down)."""
    gone = list(sku.codes.filter(status="available").order_by("pk").values_list("pk", flat=True)[keep:])
    sku.codes.filter(pk__in=gone).update(status="void", voided_at=timezone.now())


# --- adding --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("quantity", ["-3", "0", "abc", "2.5", ""])
def test_a_bad_quantity_says_what_a_quantity_must_be(client, stocked_sku, quantity):
    product_url = stocked_sku.product.get_absolute_url()
    response = client.post(
        reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": quantity}, HTTP_REFERER=product_url
    )
    assert response.url == product_url
    messages = said(response)
    assert messages == ["Steam Wallet card 测试面额: the quantity must be a whole number from 1 to 5."]
    assert "Please choose a denomination." not in messages
    assert client.session.get("kameng_cart") is None


def test_a_bad_quantity_for_buy_now_is_said_the_same_way(client, stocked_sku):
    response = client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": "-1", "buy_now": "1"})
    assert said(response) == ["Steam Wallet card 测试面额: the quantity must be a whole number from 1 to 5."]
    assert client.session.get(views.CHECKOUT_SESSION_KEY) is None


def test_adding_more_than_the_stock_keeps_what_is_left_and_says_so(client, stocked_sku):
    response = client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 6})
    assert response.url == reverse("orders:cart")
    assert said(response) == [
        "Steam Wallet card 测试面额: only 5 left, so the quantity is now 5 (you asked for 6).",
        "Added to your cart.",
    ]
    assert cart_lines(client) == [(stocked_sku.pk, 5)]
    # and adding again to a full line is refused with the same reason
    response = client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 1})
    assert said(response) == ["Steam Wallet card 测试面额: only 5 left, so the quantity is now 5 (you asked for 6)."]
    assert cart_lines(client) == [(stocked_sku.pk, 5)]


def test_adding_more_than_the_per_order_limit_keeps_the_limit_and_says_so(client, demo_shop):
    fifty = demo_shop.products["steam-wallet"].skus.get(label="50元")  # 30 codes, at most 10 per order
    response = client.post(reverse("orders:cart_add"), {"sku": fifty.pk, "quantity": 11})
    assert (
        said(response)[0]
        == "Steam Wallet card 50元: at most 10 per order, so the quantity is now 10 (you asked for 11)."
    )
    assert cart_lines(client) == [(fifty.pk, 10)]


def test_the_per_order_limit_is_shared_by_the_denominations_of_a_product(client, demo_shop):
    product = demo_shop.products["steam-wallet"]
    fifty, hundred = product.skus.get(label="50元"), product.skus.get(label="100元")
    add(client, fifty, 8)
    response = client.post(reverse("orders:cart_add"), {"sku": hundred.pk, "quantity": 5})
    assert (
        said(response)[0]
        == "Steam Wallet card 100元: at most 10 per order, so the quantity is now 2 (you asked for 5)."
    )
    assert cart_lines(client) == [(fifty.pk, 8), (hundred.pk, 2)]
    response = client.post(reverse("orders:cart_add"), {"sku": hundred.pk, "quantity": 1}, HTTP_REFERER="/p/x/")
    assert said(response) == [
        "Steam Wallet card 100元: at most 10 per order, so the quantity is now 2 (you asked for 3)."
    ]


def test_buy_now_above_the_stock_goes_to_checkout_with_what_is_left(client, demo_shop):
    ninety = demo_shop.products["iqiyi-vip"].skus.get(label="90天")  # 3 codes in the demo
    response = client.post(reverse("orders:cart_add"), {"sku": ninety.pk, "quantity": 5, "buy_now": "1"})
    assert response.url == reverse("orders:checkout")
    assert said(response) == ["iQIYI Gold VIP 90天: only 3 left, so the quantity is now 3 (you asked for 5)."]
    page = client.get(reverse("orders:checkout"))
    assert [(line.sku.pk, line.quantity) for line in page.context["lines"]] == [(ninety.pk, 3)]
    assert page.context["quote"].total_fen == 3 * ninety.price_fen


def test_a_sold_out_denomination_is_not_added(client, stocked_sku):
    void(stocked_sku, keep=0)
    response = client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 1}, HTTP_REFERER="/p/x/")
    assert response.url == "/p/x/"
    assert said(response) == ["Steam Wallet card 测试面额 is sold out and was taken out of your order."]
    assert client.session.get("kameng_cart") in (None, [])


# --- the cart ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("typed", "message"), [("-1", "from 1 to 5"), ("abc", "from 1 to 5"), ("2.5", "from 1 to 5")])
def test_a_bad_quantity_in_the_cart_is_refused_and_the_line_kept(client, stocked_sku, typed, message):
    add(client, stocked_sku, 2)
    response = client.post(reverse("orders:cart_update"), {"sku": stocked_sku.pk, "quantity": typed})
    assert said(response) == [f"Steam Wallet card 测试面额: the quantity must be a whole number {message}."]
    assert cart_lines(client) == [(stocked_sku.pk, 2)]


def test_999_in_the_cart_becomes_what_is_left(client, stocked_sku):
    add(client, stocked_sku, 1)
    response = client.post(reverse("orders:cart_update"), {"sku": stocked_sku.pk, "quantity": "999"})
    assert said(response) == ["Steam Wallet card 测试面额: only 5 left, so the quantity is now 5 (you asked for 999)."]
    page = client.get(reverse("orders:cart"))
    assert [(line.sku.pk, line.quantity) for line in page.context["lines"]] == [(stocked_sku.pk, 5)]
    assert page.context["quote"].subtotal_fen == 5_000


def test_the_remove_button_takes_the_line_out(client, demo_shop, stocked_sku):
    other = demo_shop.products["iqiyi-vip"].skus.get(label="30天")
    client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 2})
    client.post(reverse("orders:cart_add"), {"sku": other.pk, "quantity": 1})
    page = client.get(reverse("orders:cart")).content.decode()
    assert page.count('name="remove"') == 2
    response = client.post(reverse("orders:cart_update"), {"sku": stocked_sku.pk, "quantity": "2", "remove": "1"})
    assert said(response) == ["Steam Wallet card 测试面额 was removed from your cart."]
    assert cart_lines(client) == [(other.pk, 1)]


def test_the_cart_shows_line_totals_and_the_limits(client, demo_shop, stocked_sku):
    ninety = demo_shop.products["iqiyi-vip"].skus.get(label="90天")  # ¥58.00, 3 left
    client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 3})
    client.post(reverse("orders:cart_add"), {"sku": ninety.pk, "quantity": 2})
    page = client.get(reverse("orders:cart")).content.decode()
    totals = [chunk.split("</span>")[0] for chunk in page.split('class="price line-total">')[1:]]
    assert totals == ["¥30.00", "¥116.00"]
    assert "at most 10 per order · 5 left" in page and "at most 10 per order · 3 left" in page
    assert 'name="quantity" value="2" min="1" max="3"' in page  # the input is bounded as well


def test_a_cart_above_todays_stock_and_limits_is_brought_within_them_when_shown(client, demo_shop):
    fifty = demo_shop.products["steam-wallet"].skus.get(label="50元")
    ninety = demo_shop.products["iqiyi-vip"].skus.get(label="90天")
    set_cart(client, [(fifty.pk, 11), (ninety.pk, 5)])
    response = client.get(reverse("orders:cart"))
    assert said(response) == [
        "Steam Wallet card 50元: at most 10 per order, so the quantity is now 10 (you asked for 11).",
        "iQIYI Gold VIP 90天: only 3 left, so the quantity is now 3 (you asked for 5).",
    ]
    assert [(line.sku.pk, line.quantity) for line in response.context["lines"]] == [(fifty.pk, 10), (ninety.pk, 3)]
    assert cart_lines(client) == [(fifty.pk, 10), (ninety.pk, 3)]  # and stored so


# --- checkout ------------------------------------------------------------------------------------------------
def test_checkout_shows_quantities_within_the_limits_before_the_order_is_placed(client, demo_shop):
    fifty = demo_shop.products["steam-wallet"].skus.get(label="50元")
    ninety = demo_shop.products["iqiyi-vip"].skus.get(label="90天")
    set_cart(client, [(fifty.pk, 11), (ninety.pk, 5)])
    page = client.get(reverse("orders:checkout"))
    assert [(line.sku.pk, line.quantity) for line in page.context["lines"]] == [(fifty.pk, 10), (ninety.pk, 3)]
    assert page.context["quote"].subtotal_fen == 10 * fifty.price_fen + 3 * ninety.price_fen
    html = page.content.decode()
    assert "iQIYI Gold VIP 90天: only 3 left" in html
    assert f'name="qty_{ninety.pk}" value="3"' in html and "at most 10 per order · 3 left" in html
    data = {"idempotency_key": page.context["form"]["idempotency_key"].value(), "email": "a@example.com"}
    response = client.post(reverse("orders:checkout"), {**data, f"qty_{fifty.pk}": "10", f"qty_{ninety.pk}": "3"})
    order = Order.objects.get()
    assert response.url == order.get_absolute_url()
    assert sorted((item.sku_id, item.quantity) for item in order.items.all()) == [(fifty.pk, 10), (ninety.pk, 3)]


def test_quantities_are_changed_on_the_checkout_page_and_what_was_typed_is_kept(client, demo_shop, stocked_sku):
    other = demo_shop.products["iqiyi-vip"].skus.get(label="30天")
    client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 1})
    client.post(reverse("orders:cart_add"), {"sku": other.pk, "quantity": 2})
    key = client.get(reverse("orders:checkout")).context["form"]["idempotency_key"].value()
    response = client.post(
        reverse("orders:checkout"),
        {"idempotency_key": key, "email": "typed@example.com", "update": "1",
         f"qty_{stocked_sku.pk}": "3", f"qty_{other.pk}": "0"},
    )  # fmt: skip
    assert response.status_code == 200 and not Order.objects.exists()
    assert [(line.sku.pk, line.quantity) for line in response.context["lines"]] == [(stocked_sku.pk, 3)]
    assert response.context["quote"].total_fen == 3_000
    assert response.context["form"]["email"].value() == "typed@example.com"
    assert not response.context["form"].errors
    assert "Place order and pay ¥30.00" in response.content.decode()
    assert cart_lines(client) == [(stocked_sku.pk, 3)]  # the cart follows


def test_a_quantity_above_the_limit_at_checkout_is_cut_and_said(client, stocked_sku):
    client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 1, "buy_now": "1"})
    key = client.get(reverse("orders:checkout")).context["form"]["idempotency_key"].value()
    response = client.post(
        reverse("orders:checkout"),
        {"idempotency_key": key, "email": "a@example.com", "update": "1", f"qty_{stocked_sku.pk}": "50"},
    )
    assert "Steam Wallet card 测试面额: only 5 left, so the quantity is now 5 (you asked for 50)." in said(response)
    assert [line.quantity for line in response.context["lines"]] == [5]
    assert client.session[views.CHECKOUT_SESSION_KEY] == [{"sku": stocked_sku.pk, "qty": 5}]  # buy now follows


def test_placing_with_quantities_other_than_those_priced_only_updates_them(client, stocked_sku):
    client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 1})
    key = client.get(reverse("orders:checkout")).context["form"]["idempotency_key"].value()
    response = client.post(
        reverse("orders:checkout"), {"idempotency_key": key, "email": "a@example.com", f"qty_{stocked_sku.pk}": "2"}
    )
    assert response.status_code == 200 and not Order.objects.exists()
    assert said(response) == ["The quantities changed: check the new total, then place the order."]
    assert response.context["quote"].total_fen == 2_000


def test_changing_quantities_does_not_count_against_the_checkout_limit(client, stocked_sku, settings):
    settings.CHECKOUT_RATE_LIMIT = "2/m"
    client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 1})
    key = client.get(reverse("orders:checkout")).context["form"]["idempotency_key"].value()
    for quantity in ("2", "3", "1"):
        client.post(
            reverse("orders:checkout"),
            {"idempotency_key": key, "email": "a@example.com", "update": "1", f"qty_{stocked_sku.pk}": quantity},
        )
    assert not Order.objects.exists()  # changing quantities places nothing
    response = client.post(reverse("orders:checkout"), {"idempotency_key": key, "email": "a@example.com"})
    order = Order.objects.get()
    assert response.url == order.get_absolute_url() and order.total_fen == 1_000


def test_the_stock_left_is_shown_where_it_bounds_the_line_or_the_merchant_shows_stock(client, demo_shop):
    product = demo_shop.products["netease-points"]
    thirty = product.skus.get(label="30元")  # 30 codes, at most 10 per order
    add(client, thirty, 1)
    assert "at most 10 per order</small>" in client.get(reverse("orders:cart")).content.decode()
    product.show_stock_count = True
    product.save(update_fields=["show_stock_count"])
    assert "at most 10 per order · 30 left</small>" in client.get(reverse("orders:cart")).content.decode()


@pytest.mark.parametrize("referer", ["https://evil.example/phish", "//evil.example/x", "javascript:alert(1)"])
def test_a_refused_add_never_sends_the_buyer_to_another_site(client, stocked_sku, referer):
    """The Referer is the client's to set: the cart goes back to it only when it is this shop's page."""
    response = client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": "abc"}, HTTP_REFERER=referer)
    assert response.status_code == 302
    assert response.url == reverse("catalog:home")


def test_a_refused_add_goes_back_to_a_full_url_of_this_shop(client, stocked_sku):
    product_url = "http://testserver" + stocked_sku.product.get_absolute_url()
    response = client.post(
        reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": "abc"}, HTTP_REFERER=product_url
    )
    assert response.url == product_url
