"""Favourites (issue 13): add/remove on product and list pages (POST with CSRF, with and without
JavaScript), guests asked to sign in and brought back with the favourite added, /me/favourites/ with
price and stock now, paginated at a constant query count, and its card on /me/."""

from __future__ import annotations

import re

import pytest
from django.db import IntegrityError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Merchant, User
from catalog import codes, favourites, services
from catalog.models import CardCode, Favourite, Product, Sku

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def signed_in(user, language: str = "en") -> Client:
    browser = Client()
    browser.cookies["django_language"] = language
    browser.force_login(user)
    return browser


def product(slug: str) -> Product:
    return Product.objects.get(slug=slug)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def add_url(p: Product) -> str:
    return f"/me/favourites/{p.pk}/add/"


def remove_url(p: Product) -> str:
    return f"/me/favourites/{p.pk}/remove/"


# --- The model ---------------------------------------------------------------------------------
def test_a_product_is_a_favourite_of_a_user_once(user, demo_shop):
    Favourite.objects.create(user=user, product=product("steam-wallet"))
    with pytest.raises(IntegrityError):
        Favourite.objects.create(user=user, product=product("steam-wallet"))


# --- Buttons without JavaScript -----------------------------------------------------------------
def test_add_and_remove_from_the_product_page_without_javascript(user, demo_shop):
    browser = signed_in(user)
    steam = product("steam-wallet")
    page = browser.get("/p/steam-wallet/").content.decode()
    assert f'action="{add_url(steam)}"' in page and 'aria-pressed="false"' in page

    response = browser.post(add_url(steam), {"next": "/p/steam-wallet/"})
    assert response.status_code == 302 and response["Location"] == "/p/steam-wallet/"
    assert Favourite.objects.filter(user=user, product=steam).exists()
    page = browser.get("/p/steam-wallet/").content.decode()
    assert "Added to your favourites." in page
    assert f'action="{remove_url(steam)}"' in page and 'aria-pressed="true"' in page

    browser.post(add_url(steam), {"next": "/p/steam-wallet/"})  # twice: still one
    assert Favourite.objects.filter(user=user).count() == 1

    response = browser.post(remove_url(steam), {"next": "/p/steam-wallet/"})
    assert response.status_code == 302
    assert not Favourite.objects.filter(user=user).exists()


def test_list_cards_carry_a_heart_pressed_for_favourites(user, demo_shop):
    steam = product("steam-wallet")
    Favourite.objects.create(user=user, product=steam)
    browser = signed_in(user)
    for url in ("/", f"/c/{steam.category.slug}/", "/search/?q=Steam"):
        page = browser.get(url).content.decode()
        hearts = re.findall(
            r'<form method="post" action="([^"]+)" class="fav fav-compact".*?aria-pressed="(\w+)"', page
        )
        assert hearts, url
        assert (remove_url(steam), "true") in hearts, url
        assert all(pressed == "false" for action, pressed in hearts if action != remove_url(steam)), url
        assert 'name="csrfmiddlewaretoken"' in page


def test_the_buttons_need_the_csrf_token(user, demo_shop):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.post(add_url(product("steam-wallet"))).status_code == 403
    assert not Favourite.objects.exists()


def test_next_must_be_our_own_page(user, demo_shop):
    steam = product("steam-wallet")
    response = signed_in(user).post(add_url(steam), {"next": "https://evil.example/phish"})
    assert response["Location"] == "/p/steam-wallet/"


def test_a_get_does_not_add(user, demo_shop):
    assert signed_in(user).get(add_url(product("steam-wallet"))).status_code == 405
    assert not Favourite.objects.exists()


def test_only_listed_products_can_be_added_but_a_delisted_one_can_be_removed(user, demo_shop):
    steam = product("steam-wallet")
    Favourite.objects.create(user=user, product=steam)
    Product.objects.filter(pk=steam.pk).update(status=Product.Status.DELISTED)
    office = product("office-key")
    Product.objects.filter(pk=office.pk).update(status=Product.Status.DRAFT)
    browser = signed_in(user)
    assert browser.post(add_url(office)).status_code == 404
    assert browser.post("/me/favourites/999999/add/").status_code == 404
    assert browser.post(remove_url(steam)).status_code == 302
    assert not Favourite.objects.exists()


# --- With JavaScript (fetch asks for JSON) ------------------------------------------------------
def test_json_answers_for_the_enhanced_buttons(user, demo_shop):
    steam = product("steam-wallet")
    browser = signed_in(user)
    response = browser.post(add_url(steam), **JSON)
    assert response.status_code == 200 and response.json()["favourited"] is True
    response = browser.post(remove_url(steam), **JSON)
    assert response.status_code == 200 and response.json()["favourited"] is False
    assert not Favourite.objects.exists()


# --- Guests -------------------------------------------------------------------------------------
def test_a_guest_is_sent_to_sign_in_and_comes_back_with_the_favourite(user, password, demo_shop):
    steam = product("steam-wallet")
    guest = Client()
    response = guest.post(add_url(steam), {"next": "/c/game-cards/?page=1"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fc%2Fgame-cards%2F%3Fpage%3D1"
    assert not Favourite.objects.exists()

    response = guest.post(response["Location"], {"login": user.email, "password": password})
    assert response.status_code == 302 and response["Location"] == "/c/game-cards/?page=1"
    assert list(Favourite.objects.filter(user=user).values_list("product_id", flat=True)) == [steam.pk]
    # Only once: signing in again later adds nothing more and says nothing.
    guest.logout()
    guest.post("/accounts/login/", {"login": user.email, "password": password})
    assert Favourite.objects.filter(user=user).count() == 1


def test_a_guest_who_signs_up_gets_the_favourite_too(demo_shop):
    steam = product("steam-wallet")
    guest = Client()
    guest.post(add_url(steam), {"next": "/p/steam-wallet/"})
    response = guest.post(
        "/accounts/signup/?next=/p/steam-wallet/",
        {"email": "new@example.com", "password1": "a-long-new-password-1", "password2": "a-long-new-password-1"},
    )
    assert response.status_code == 302
    new = User.objects.get(email="new@example.com")
    assert Favourite.objects.filter(user=new, product=steam).exists()


def test_a_guest_with_javascript_gets_the_sign_in_address(demo_shop):
    steam = product("steam-wallet")
    response = Client().post(add_url(steam), {"next": "/p/steam-wallet/"}, **JSON)
    assert response.status_code == 401
    assert response.json()["login_url"] == "/accounts/login/?next=%2Fp%2Fsteam-wallet%2F"


def test_a_guest_cannot_remove_list_or_switch_notices(demo_shop):
    steam = product("steam-wallet")
    guest = Client()
    for response in (
        guest.post(remove_url(steam)),
        guest.post(f"/me/favourites/{steam.pk}/notify/", {"notify": "1"}),
        guest.get("/me/favourites/"),
    ):
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- Access: the ids are products; a favourite is always the signed-in user's own ---------------
@pytest.mark.parametrize("who", ["other_buyer", "merchant_staff", "other_merchant_staff"])
def test_nobody_else_can_touch_a_users_favourites(request, user, demo_shop, who):
    steam = product("steam-wallet")
    Favourite.objects.create(user=user, product=steam)
    favourites.set_notify(user=user, product_id=steam.pk, notify=True)
    if who == "other_buyer":
        other = User.objects.create_user(email="other@example.com", password="x-password-123")
    else:
        other = request.getfixturevalue(who)
    browser = signed_in(other)
    assert browser.post(f"/me/favourites/{steam.pk}/notify/", {"notify": "0"}).status_code == 404
    browser.post(remove_url(steam))
    mine = Favourite.objects.get(user=user, product=steam)
    assert mine.notify is True
    page = browser.get("/me/favourites/").content.decode()
    assert "Steam" not in page  # their own (empty) list


# --- /me/favourites/ ----------------------------------------------------------------------------
def test_the_list_shows_lowest_price_and_stock_state(user, demo_shop):
    steam, office, netease = product("steam-wallet"), product("office-key"), product("netease-points")
    for p in (steam, office, netease):
        Favourite.objects.create(user=user, product=p)
    # Steam: the cheapest SKU goes off sale, so the lowest price is the next one.
    cheapest = steam.skus.order_by("price_fen").first()
    next_price = steam.skus.exclude(pk=cheapest.pk).order_by("price_fen").first().price_fen
    Sku.objects.filter(pk=cheapest.pk).update(is_active=False)
    # Office: every code sold.
    CardCode.objects.filter(sku__product=office).update(status=CardCode.Status.VOID, voided_at="2026-01-01T00:00Z")
    # NetEase: delisted.
    Product.objects.filter(pk=netease.pk).update(status=Product.Status.DELISTED)

    page = signed_in(user).get("/me/favourites/").content.decode()
    rows = {
        int(pk): text_of(body) for pk, body in re.findall(r'data-fav-row data-product="(\d+)">(.*?)</li>', page, re.S)
    }
    assert f"¥{next_price // 100}.{next_price % 100:02d}" in rows[steam.pk] and "In stock" in rows[steam.pk]
    assert "Sold out" in rows[office.pk]
    assert "Off sale" in rows[netease.pk]


def test_off_sale_when_the_merchant_is_suspended(user, demo_shop):
    steam = product("steam-wallet")
    Favourite.objects.create(user=user, product=steam)
    Merchant.objects.filter(pk=steam.merchant_id).update(status=Merchant.Status.SUSPENDED)
    (favourite,) = favourites.for_page(user=user)
    assert favourites.state_of(favourite) == favourites.State.OFF_SALE


def make_products(shop, count: int, start: int = 0) -> list[Product]:
    category = shop.categories["game-cards"]
    made = []
    for n in range(start, start + count):
        p = Product.objects.create(
            merchant=shop.merchant, category=category, title=f"收藏商品 {n}", slug=f"fav-{n}",
            status=Product.Status.LISTED,
        )  # fmt: skip
        skus = Sku.objects.bulk_create(Sku(product=p, label=f"{v}元", price_fen=v * 100) for v in (10, 20))
        services.add_codes(sku=skus[0], secrets=[codes.Secret(f"F{n}-{i}") for i in range(2)])
        made.append(p)
    return made


def queries_of(browser, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert browser.get(url).status_code == 200
    return len(captured)


def test_the_list_is_paginated_at_a_constant_query_count(user, demo_shop):
    browser = signed_in(user)
    for p in make_products(demo_shop, 3):
        Favourite.objects.create(user=user, product=p)
    queries_of(browser, "/me/favourites/")  # the first view caches the shop's settings (catalog/shop.py)
    few = queries_of(browser, "/me/favourites/")
    for p in make_products(demo_shop, 45, start=3):
        Favourite.objects.create(user=user, product=p)
    assert queries_of(browser, "/me/favourites/") == few
    assert queries_of(browser, "/me/favourites/?page=2") == few
    page = browser.get("/me/favourites/").content.decode()
    assert page.count("data-fav-row") == 20
    assert "Page 1 of 3" in text_of(page)
    assert few <= 5  # session, user, count, the page's favourites with their state


def test_list_pages_keep_a_constant_query_count_for_a_signed_in_shopper(user, demo_shop):
    browser = signed_in(user)
    make_products(demo_shop, 2)
    urls = ("/", "/c/game-cards/", "/search/?q=收藏")
    for url in urls:
        browser.get(url)  # warm caches first (the home page's list of campaigns costs a query when cold)
    before = {url: queries_of(browser, url) for url in urls}
    for p in make_products(demo_shop, 30, start=2):
        Favourite.objects.create(user=user, product=p)
    for url, count in before.items():
        browser.get(url)  # new products dropped the home page's cache (catalog/home.py): fill it again
        assert queries_of(browser, url) == count, url


def test_the_empty_list_points_to_the_shop(user):
    page = signed_in(user).get("/me/favourites/").content.decode()
    assert "No favourites yet." in page
    assert re.search(r'<a class="button-link" href="/">Browse the shop</a>', page)


def test_the_notice_switch_without_javascript(user, demo_shop):
    steam = product("steam-wallet")
    Favourite.objects.create(user=user, product=steam)
    browser = signed_in(user)
    page = browser.get("/me/favourites/").content.decode()
    assert 'role="switch" aria-checked="false"' in page
    response = browser.post(f"/me/favourites/{steam.pk}/notify/", {"notify": "1", "next": "/me/favourites/"})
    assert response.status_code == 302 and response["Location"] == "/me/favourites/"
    favourite = Favourite.objects.get(user=user, product=steam)
    assert favourite.notify and favourite.language == "en"
    assert favourite.seen_price_fen == steam.skus.order_by("price_fen").first().price_fen
    assert favourite.seen_in_stock is True
    assert 'role="switch" aria-checked="true"' in browser.get("/me/favourites/").content.decode()
    response = browser.post(f"/me/favourites/{steam.pk}/notify/", {"notify": "0"}, **JSON)
    assert response.json()["notify"] is False
    assert not Favourite.objects.get(user=user, product=steam).notify


# --- /me/ ---------------------------------------------------------------------------------------
def test_the_user_center_has_a_favourites_card(user, demo_shop):
    Favourite.objects.create(user=user, product=product("steam-wallet"))
    Favourite.objects.create(user=user, product=product("office-key"))
    page = signed_in(user).get("/me/").content.decode()
    card = re.search(r'<section class="me-card" data-card="favourites">(.*?)</section>', page, re.S).group(1)
    assert "2 products" in text_of(card)
    assert 'href="/me/favourites/"' in card


def test_operators_see_favourites_in_admin_and_merchant_staff_do_not(
    client, demo_shop, user, operator, merchant_staff, password
):
    favourites.add(user=user, product_id=demo_shop.products["steam-wallet"].pk)
    client.force_login(operator)
    page = client.get("/admin/catalog/favourite/")
    assert page.status_code == 200 and str(user) in page.content.decode()
    client.force_login(merchant_staff)
    assert client.get("/admin/catalog/favourite/").status_code == 403
    client.logout()
    assert client.get("/admin/catalog/favourite/").status_code == 302
