"""The user-center home /me/ (issue 13): a greeting, the cards other apps register in slot order
(accounts/usercenter.py), shortcut tiles; sign-in required, only the user's own numbers."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts import usercenter, wallet
from accounts.models import User, WalletEntry

pytestmark = pytest.mark.django_db


def signed_in(user, language: str = "en") -> Client:
    browser = Client()
    browser.cookies["django_language"] = language
    browser.force_login(user)
    return browser


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def extra_card():
    """A card registered for the test only, removed afterwards (the registry is process-wide)."""
    names = []

    def add(name: str, **kwargs):
        names.append(name)
        usercenter.register(name=name, **kwargs)

    yield add
    for name in names:
        usercenter.unregister(name)


def test_installed_apps_register_their_cards_in_slot_order():
    assert [card.name for card in usercenter.cards()] == [
        "wallet", "membership", "points", "orders", "favourites", "leaderboard", "coupons", "invite",
    ]  # fmt: skip
    assert [card.order for card in usercenter.cards()] == [
        usercenter.WALLET, usercenter.MEMBERSHIP, usercenter.POINTS, usercenter.ORDERS, usercenter.FAVOURITES,
        usercenter.LEADERBOARD, usercenter.COUPONS, usercenter.INVITE,
    ]  # fmt: skip
    assert usercenter.WALLET < usercenter.MEMBERSHIP < usercenter.POINTS < usercenter.ORDERS < usercenter.COUPONS
    assert usercenter.ORDERS < usercenter.FAVOURITES < usercenter.LEADERBOARD < usercenter.COUPONS < usercenter.INVITE


def test_a_card_takes_its_slot_between_the_others(extra_card):
    # (Not named after a real card: the fixture unregisters its cards afterwards.)
    extra_card("gifts", app="accounts", template="accounts/overview.html", context=dict, order=usercenter.COUPONS + 5)
    extra_card("badges", app="accounts", template="accounts/overview.html", context=dict, order=usercenter.WALLET + 1)
    assert [card.name for card in usercenter.cards()] == [
        "wallet", "badges", "membership", "points", "orders", "favourites", "leaderboard", "coupons", "gifts",
        "invite",
    ]  # fmt: skip


def test_a_card_of_an_app_that_is_not_installed_is_absent(user, extra_card):
    def boom(request):
        raise AssertionError("a card of an app that is not installed must not be asked for its context")

    extra_card("gifts", app="gifts_not_installed", template="nope.html", context=boom, order=usercenter.COUPONS)
    assert "gifts" not in [card.name for card in usercenter.cards()]
    response = signed_in(user).get("/me/")
    assert response.status_code == 200
    assert 'data-card="gifts"' not in response.content.decode()


def test_anonymous_is_sent_to_sign_in():
    response = Client().get("/me/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login") + "?next=/me/")


def test_greeting_wallet_card_and_shortcut_tiles(user):
    wallet.credit(user=user, amount_fen=12_345, kind=WalletEntry.Kind.TOP_UP, reference="t1")
    page = signed_in(user).get("/me/").content.decode()
    text = text_of(page)
    assert "Hello, 小明" in text
    assert f"Member since {user.date_joined:%Y-%m-%d}" in text
    wallet_card = re.search(r'<section class="me-card" data-card="wallet">(.*?)</section>', page, re.S).group(1)
    assert "¥123.45" in text_of(wallet_card)
    assert 'href="/me/wallet/#top-up"' in wallet_card and 'href="/me/wallet/"' in wallet_card
    tiles = re.search(r'<nav class="me-tiles"[^>]*>(.*?)</nav>', page, re.S).group(1)
    for name in ("orders:mine", "accounts:wallet", "account_change_password", "account_email"):
        assert f'href="{reverse(name)}"' in tiles
    assert f'action="{reverse("account_logout")}"' in tiles and "Sign out" in tiles
    assert '<ul class="links">' not in page  # no longer a bulleted list of links
    assert page.index('data-card="wallet"') < page.index('data-card="orders"') < page.index('class="me-tiles"')


def test_chinese(user):
    text = text_of(signed_in(user, "zh-hans").get("/me/").content.decode())
    for words in ("你好，小明", "注册于", "钱包余额", "充值", "我的订单", "修改密码", "退出"):
        assert words in text, words


def test_only_the_signed_in_users_balance_is_shown(user, password):
    other = User.objects.create_user(email="other@example.com", password=password, nickname="别人")
    wallet.credit(user=other, amount_fen=99_900, kind=WalletEntry.Kind.TOP_UP, reference="o1")
    text = text_of(signed_in(user).get("/me/").content.decode())
    assert "¥999.00" not in text and "别人" not in text
    assert "¥0.00" in text


def test_without_payments_installed_the_wallet_card_is_absent(user, settings):
    """The real registration of payments stays in the registry; only the installed apps count."""
    settings.INSTALLED_APPS = [
        app for app in settings.INSTALLED_APPS if app not in ("payments", "payments.apps.PaymentsConfig")
    ]
    assert [card.name for card in usercenter.cards()] == [
        "membership", "points", "orders", "favourites", "leaderboard", "coupons", "invite",
    ]  # fmt: skip
    page = signed_in(user).get("/me/").content.decode()
    assert 'data-card="orders"' in page and 'data-card="wallet"' not in page
