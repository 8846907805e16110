"""/admin/login/ limits failed sign-ins per account and per client IP (kameng/admin_auth.py)."""

import time

import pytest
from django.test import Client
from django.utils import translation

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/?next=/admin/"


def sign_in(email, password, *, ip="203.0.113.7", language="en"):
    client = Client(REMOTE_ADDR=ip)
    client.cookies["django_language"] = language
    response = client.post(LOGIN, {"username": email, "password": password})
    return client, response


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_twelve_wrong_passwords_then_the_right_one_is_refused_with_a_message(operator, password):
    for _ in range(12):
        client, response = sign_in(operator.email, "wrong-guess")
        assert not signed_in(client)
    client, response = sign_in(operator.email, password)
    assert response.status_code == 429
    assert not signed_in(client)
    html = response.content.decode()
    assert "Too many failed sign-in attempts. Please wait 15 minutes and try again." in html
    # The same answer in Chinese for a Chinese browser, on the admin's own login page.
    client, response = sign_in(operator.email, password, language="zh-hans")
    with translation.override("zh-hans"):
        expected = translation.ngettext(
            "Too many failed sign-in attempts. Please wait %(minutes)d minute and try again.",
            "Too many failed sign-in attempts. Please wait %(minutes)d minutes and try again.",
            15,
        ) % {"minutes": 15}
    assert "Too many" not in expected and expected in response.content.decode()
    assert 'id="login-form"' in response.content.decode() and not signed_in(client)


def test_the_account_stays_locked_from_another_address(operator, password):
    for _ in range(5):
        sign_in(operator.email, "wrong-guess", ip="203.0.113.7")
    client, response = sign_in(operator.email.upper(), password, ip="198.51.100.20")  # case does not help
    assert response.status_code == 429 and not signed_in(client)


def test_one_address_is_limited_across_accounts(operator, password):
    for n in range(10):  # ten different accounts, one failure each: no account limit is reached
        client, response = sign_in(f"staff{n}@example.com", "wrong-guess", ip="203.0.113.9")
        assert response.status_code == 200
    client, response = sign_in(operator.email, password, ip="203.0.113.9")
    assert response.status_code == 429 and not signed_in(client)
    client, response = sign_in(operator.email, password, ip="203.0.113.10")  # another address is not
    assert response.status_code == 302 and signed_in(client)


def test_successful_sign_ins_do_not_count(operator, password):
    for _ in range(8):
        client, response = sign_in(operator.email, password)
        assert response.status_code == 302 and signed_in(client)


def test_sign_in_works_again_once_the_window_has_passed(settings, operator, password):
    settings.ADMIN_LOGIN_RATE_LIMITS = "3/2s/key"
    for _ in range(3):
        sign_in(operator.email, "wrong-guess")
    client, response = sign_in(operator.email, password)
    assert response.status_code == 429 and not signed_in(client)
    time.sleep(2.1)
    client, response = sign_in(operator.email, password)
    assert response.status_code == 302 and signed_in(client)


def test_the_shops_sign_in_counts_per_account_whatever_the_host_header(operator, password):
    """Staff signed in through /accounts/login/ reach the admin too: that door must not reset its
    per-account count when the Host header names another port."""
    for _ in range(5):
        Client(REMOTE_ADDR="203.0.113.7").post("/accounts/login/", {"login": operator.email, "password": "wrong"})
    client = Client(REMOTE_ADDR="198.51.100.3")
    client.post("/accounts/login/", {"login": operator.email, "password": password}, HTTP_HOST="localhost:1234")
    assert not signed_in(client)
    assert client.get("/admin/", HTTP_HOST="localhost:1234").status_code == 302  # to the sign-in page
