"""'My orders' (issue 13): tabs by status with a count each, search by order number or product
title, ten a page with the tab and search kept in the page links, per-row actions (pay and cancel
an unpaid order, view and download a delivered one), empty states, only the buyer's own orders,
and a constant number of queries as orders grow."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from orders import aftersales
from orders import services as orders
from orders.models import AfterSalesRequest, Order
from orders.tests.conftest import delivered, make_sku, pay, place

pytestmark = pytest.mark.django_db(transaction=True)
MINE = reverse("orders:mine")


def signed_in(user, password, language: str = "en") -> Client:
    browser = Client()
    browser.cookies["django_language"] = language
    assert browser.login(email=user.email, password=password)
    return browser


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def numbers(response) -> list[str]:
    return [order.number for order in response.context["orders"]]


def counts(response) -> dict[str, int]:
    return {name: count for name, _label, count in response.context["tabs"]}


def copy(order: Order, *, status: str | None = None, **changes) -> Order:
    """Another order of the same buyer and items in ``status`` (the list only reads orders; how
    an order reaches each status is tested in test_lifecycle.py)."""
    order = Order.objects.get(pk=order.pk)
    items = list(order.items.all())
    order.pk = None
    order.number = "T" + uuid.uuid4().hex[:12].upper()
    order.idempotency_key = uuid.uuid4().hex
    order.status = status or order.status
    for field, value in changes.items():
        setattr(order, field, value)
    order.save()
    for item in items:
        item.pk = None
        item.order = order
        item.save()
    return order


@pytest.fixture
def sku(demo_shop):
    return make_sku(demo_shop.products["steam-wallet"], codes_count=20, label="列表面额", price_fen=1000)


@pytest.fixture
def shelf(user, sku):
    """One order of ``user`` in each tab's status, placed and paid through the services."""
    unpaid = place(sku, 1, buyer=user, email=user.email).order
    expired = place(sku, 1, buyer=user, email=user.email).order
    Order.objects.filter(pk=expired.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))
    done = delivered(sku, 2, buyer=user, email=user.email)
    claimed = delivered(sku, 1, buyer=user, email=user.email)
    aftersales.open_request(order=claimed, reason="invalid_code", message="第一张无效", actor=user)
    refunded = copy(done, status=Order.Status.REFUNDED, refunded_fen=done.total_fen)
    return {"unpaid": unpaid, "expired": expired, "delivered": done, "after_sales": claimed, "refunded": refunded}


# --- tabs and counts ------------------------------------------------------------------------------------------
def test_each_tab_lists_its_orders_and_every_tab_is_counted(user, password, shelf):
    browser = signed_in(user, password)
    response = browser.get(MINE)
    assert counts(response) == {"all": 5, "unpaid": 1, "delivered": 2, "after_sales": 1, "refunded": 1}
    assert set(numbers(response)) == {order.number for order in shelf.values()}
    assert numbers(browser.get(MINE, {"tab": "unpaid"})) == [shelf["unpaid"].number]
    assert set(numbers(browser.get(MINE, {"tab": "delivered"}))) == {
        shelf["delivered"].number,
        shelf["after_sales"].number,
    }
    assert numbers(browser.get(MINE, {"tab": "after_sales"})) == [shelf["after_sales"].number]
    assert numbers(browser.get(MINE, {"tab": "refunded"})) == [shelf["refunded"].number]
    assert numbers(browser.get(MINE, {"tab": "nonsense"})) == numbers(response)  # unknown tab: all


def test_an_unpaid_order_past_its_deadline_is_expired_not_unpaid(user, password, shelf):
    """The sweeper has not run: the stored status is still pending_payment."""
    assert Order.objects.get(pk=shelf["expired"].pk).status == Order.Status.PENDING_PAYMENT
    browser = signed_in(user, password)
    assert shelf["expired"].number not in numbers(browser.get(MINE, {"tab": "unpaid"}))
    page = browser.get(MINE).content.decode()
    row = re.search(rf'<li class="order-row">(?:(?!</li>).)*{shelf["expired"].number}.*?</li>', page, re.S).group(0)
    assert "Expired" in text_of(row) or "expired" in text_of(row)
    assert "payments/start" not in row and "cancel" not in row


def test_a_request_that_was_decided_leaves_the_after_sales_tab_but_its_state_shows(user, password, shelf, operator):
    request = AfterSalesRequest.objects.get(order=shelf["after_sales"])
    aftersales.reject(request=request, actor=operator, note="卡密已使用")
    browser = signed_in(user, password)
    response = browser.get(MINE)
    assert counts(response)["after_sales"] == 0
    assert "After-sales: rejected" in text_of(response.content.decode())
    tab = browser.get(MINE, {"tab": "after_sales"}).content.decode()
    assert "No open after-sales requests." in tab


def test_rows_show_number_date_items_total_status_and_after_sales(user, password, shelf):
    order = shelf["after_sales"]
    text = text_of(signed_in(user, password).get(MINE).content.decode())
    when = timezone.localtime(order.created_at).strftime("%Y-%m-%d %H:%M")
    assert (
        f"{order.number} Steam 钱包充值卡 · 列表面额 ¥10.00 · delivered {when} After-sales: waiting for the merchant"
        in text
    )
    assert f"{shelf['delivered'].number} Steam 钱包充值卡 · 列表面额 ×2 ¥20.00 · delivered" in text


def test_chinese_tabs_statuses_and_empty_state(user, password, shelf):
    browser = signed_in(user, password, "zh-hans")
    text = text_of(browser.get(MINE).content.decode())
    for label in ("全部", "待付款", "已发货", "售后", "退款"):
        assert label in text
    assert "售后：等待商家处理" in text or "售后：" in text
    Order.objects.filter(pk=shelf["unpaid"].pk).update(status=Order.Status.CANCELLED)
    assert "没有待付款的订单" in text_of(browser.get(MINE, {"tab": "unpaid"}).content.decode())


# --- actions --------------------------------------------------------------------------------------------------
def test_unpaid_row_posts_pay_and_cancel_to_the_existing_endpoints(user, password, shelf):
    browser = Client(enforce_csrf_checks=True)
    browser.cookies["django_language"] = "en"
    browser.force_login(user)
    page = browser.get(MINE, {"tab": "unpaid"}).content.decode()
    number = shelf["unpaid"].number
    pay_form = re.search(rf'<form method="post" action="/payments/start/{number}/">(.*?)</form>', page, re.S).group(1)
    assert 'name="csrfmiddlewaretoken"' in pay_form and 'name="provider" value="sandbox"' in pay_form
    assert "Pay ¥10.00 with" in text_of(pay_form)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', pay_form).group(1)
    assert f'action="{reverse("orders:cancel", args=[number])}"' in page
    response = browser.post(reverse("orders:cancel", args=[number]), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Order.objects.get(number=number).status == Order.Status.CANCELLED
    assert "No unpaid orders." in browser.get(MINE, {"tab": "unpaid"}).content.decode()


def test_delivered_goods_rows_link_the_codes_and_downloads(user, password, shelf):
    browser = signed_in(user, password)
    page = browser.get(MINE, {"tab": "delivered"}).content.decode()
    order = shelf["delivered"]
    assert f'href="{order.get_absolute_url()}">View codes</a>' in page
    for fmt in ("txt", "xlsx"):
        url = reverse("orders:download", args=[order.number, fmt])
        assert f'href="{url}"' in page
        assert browser.get(url).status_code == 200
    unpaid = browser.get(MINE, {"tab": "unpaid"}).content.decode()
    assert "View codes" not in unpaid and "Download" not in unpaid


def test_a_credited_top_up_is_labelled_a_top_up_without_downloads(user, password, sku):
    top_up = orders.place_top_up(buyer=user, amount_fen=5_000, idempotency_key="top-up").order
    pay(top_up)
    page = signed_in(user, password).get(MINE).content.decode()
    assert f"{top_up.number} Wallet top-up ¥50.00 ¥50.00 · credited" in text_of(page)
    assert "Download" not in page and "View codes" not in page


# --- search -----------------------------------------------------------------------------------------------------
def test_search_by_order_number_or_product_title_within_the_tab(user, password, shelf):
    browser = signed_in(user, password)
    target = shelf["delivered"]
    response = browser.get(MINE, {"q": target.number[-6:].lower()})
    assert numbers(response) == [target.number]
    assert counts(response)["all"] == 1
    assert set(numbers(browser.get(MINE, {"q": "Steam"}))) == {o.number for o in shelf.values()}
    assert numbers(browser.get(MINE, {"q": "Steam", "tab": "unpaid"})) == [shelf["unpaid"].number]
    empty = browser.get(MINE, {"q": "xyz-none"})
    assert numbers(empty) == [] and counts(empty)["all"] == 0
    assert "Nothing matches “xyz-none”." in text_of(empty.content.decode())


def test_search_text_is_escaped_in_the_empty_state(user, password, shelf):
    page = signed_in(user, password).get(MINE, {"q": "<b>x</b>"}).content.decode()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


# --- pagination ---------------------------------------------------------------------------------------------------
def test_ten_a_page_and_page_links_keep_the_tab_and_search(user, password, shelf):
    for _ in range(11):
        copy(shelf["delivered"])
    browser = signed_in(user, password)
    first = browser.get(MINE, {"tab": "delivered", "q": "Steam"})
    assert len(numbers(first)) == 10 and counts(first)["delivered"] == 13
    page = first.content.decode()
    link = re.search(r'<a href="\?([^"]+)">Next</a>', page).group(1).replace("&amp;", "&")
    assert sorted(link.split("&")) == ["page=2", "q=Steam", "tab=delivered"]
    second = browser.get(f"{MINE}?{link}")
    assert len(numbers(second)) == 3
    assert not set(numbers(first)) & set(numbers(second))
    assert "Page 2 of 2" in text_of(second.content.decode())
    # Switching tab starts again at page 1 and keeps the search.
    tabs = re.findall(r'<a href="\?([^"]*)" data-tab="unpaid"', second.content.decode())
    assert sorted(tabs[0].replace("&amp;", "&").split("&")) == ["q=Steam", "tab=unpaid"]


# --- access -------------------------------------------------------------------------------------------------------
def test_another_buyers_orders_never_appear_even_when_searched(user, password, shelf, sku):
    stranger = User.objects.create_user(email="other@example.com", password=password)
    theirs = delivered(sku, 1, buyer=stranger, email=stranger.email)
    guest = delivered(sku, 1, email="guest@example.com")
    browser = signed_in(user, password)
    for params in ({}, {"q": theirs.number}, {"q": guest.number}, {"q": "Steam"}, {"tab": "delivered"}):
        response = browser.get(MINE, params)
        assert theirs.number not in numbers(response) and guest.number not in numbers(response)
        rows = "".join(re.findall(r'<li class="order-row.*?</li>', response.content.decode(), re.S))
        assert theirs.number not in rows and guest.number not in rows
    assert counts(browser.get(MINE))["all"] == 5
    assert numbers(signed_in(stranger, password).get(MINE)) == [theirs.number]


def test_a_guest_is_sent_to_the_look_up(client):
    response = client.get(MINE, {"tab": "unpaid", "q": "x"})
    assert response.status_code == 302 and response.url == reverse("orders:lookup")


# --- queries ---------------------------------------------------------------------------------------------------
def _queries(browser, params) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert browser.get(MINE, params).status_code == 200
    return len(queries)


@pytest.mark.parametrize("params", [{}, {"tab": "unpaid"}, {"tab": "delivered", "q": "Steam"}])
def test_queries_stay_constant_as_orders_grow(user, password, sku, params):
    one = place(sku, 1, buyer=user, email=user.email).order
    done = delivered(sku, 1, buyer=user, email=user.email)
    browser = signed_in(user, password)
    few = _queries(browser, params)
    for _ in range(15):
        copy(one)
        copy(done)
    assert Order.objects.filter(buyer=user).count() == 32
    assert _queries(browser, params) == few
    # session, user, the tab counts, the page of orders, its items, the wallet balance (unpaid rows)
    assert few <= 6


# --- the orders card of the user-center home (/me/, accounts/usercenter.py) -------------------------------------
HOME = reverse("accounts:overview")


def home_counts(page: str) -> dict[str, tuple[int, str]]:
    card = re.search(r'<section class="me-card" data-card="orders">(.*?)</section>', page, re.S).group(1)
    links = re.findall(r'<a href="([^"]+)" data-tab="(\w+)"><strong>(\d+)</strong>', card)
    return {tab: (int(count), href) for href, tab, count in links}


def test_home_counts_orders_by_effective_status_and_links_each_tab(user, password, shelf):
    page = signed_in(user, password).get(HOME).content.decode()
    assert home_counts(page) == {
        "unpaid": (1, f"{MINE}?tab=unpaid"),  # the order past its deadline is not counted
        "delivered": (2, f"{MINE}?tab=delivered"),
        "after_sales": (1, f"{MINE}?tab=after_sales"),
        "refunded": (1, f"{MINE}?tab=refunded"),
    }
    assert "5 orders" in text_of(page)
    zh = text_of(signed_in(user, password, "zh-hans").get(HOME).content.decode())
    for label in ("待付款", "已发货", "售后", "退款", "共 5 单"):
        assert label in zh, label


def test_home_never_counts_another_buyers_orders(user, password, shelf):
    other = User.objects.create_user(email="other@example.com", password=password)
    page = signed_in(other, password).get(HOME).content.decode()
    assert {tab: count for tab, (count, _href) in home_counts(page).items()} == {
        "unpaid": 0, "delivered": 0, "after_sales": 0, "refunded": 0,
    }  # fmt: skip
    assert "0 orders" in text_of(page)


def test_home_queries_stay_constant_as_orders_grow(user, password, sku):
    browser = signed_in(user, password)
    delivered(sku, 1, buyer=user, email=user.email)
    with CaptureQueriesContext(connection) as one:
        assert browser.get(HOME).status_code == 200
    first = Order.objects.filter(buyer=user).first()
    for _ in range(29):
        copy(first)
    with CaptureQueriesContext(connection) as thirty:
        page = browser.get(HOME).content.decode()
    assert home_counts(page)["delivered"][0] == 30
    assert len(thirty) == len(one)
    counting = [q["sql"] for q in thirty.captured_queries if 'FROM "orders_order"' in q["sql"]]
    assert len(counting) == 1  # every count in one query
