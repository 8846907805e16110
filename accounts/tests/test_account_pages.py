"""allauth's pages in the shop's frame, and its e-mails in the shop's name (issue 13, accounts)."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from django.core import mail
from django.test import override_settings

from accounts.models import User

pytestmark = pytest.mark.django_db

SHOP_LAYOUT = 'class="site-header"'  # templates/base.html's header: the page is in the shop's frame
AUTH_CARD = 'class="auth-title"'  # templates/allauth/elements/h1.html: the account card's heading
NEW_PASSWORD = "a-long-Passw0rd!"

# (url, zh-hans heading, en heading) for pages an anonymous visitor sees
ANONYMOUS_PAGES = [
    ("/accounts/login/", "登录", "Sign In"),
    ("/accounts/signup/", "注册", "Sign Up"),
    ("/accounts/password/reset/", "密码重置", "Password Reset"),
    ("/accounts/password/reset/done/", "密码重置", "Password Reset"),
    ("/accounts/confirm-email/", "验证您的Email地址", "Verify Your Email Address"),
    ("/accounts/confirm-email/not-a-key/", "确认Email地址", "Confirm Email Address"),
    ("/accounts/password/reset/key/done/", "修改密码", "Change Password"),
]
SIGNED_IN_PAGES = [
    ("/accounts/password/change/", "修改密码", "Change Password"),
    ("/accounts/email/", "Email地址", "Email Addresses"),
    ("/accounts/logout/", "登出", "Sign Out"),
]


def get_in(client, url, language):
    client.cookies["django_language"] = language
    return client.get(url)


def assert_shop_page(response, heading):
    assert response.status_code == 200
    html = response.content.decode()
    assert SHOP_LAYOUT in html
    assert re.search(rf'<h1 class="auth-title">\s*{re.escape(heading)}\s*</h1>', html), heading
    assert "<strong>Menu:</strong>" not in html and "<strong>菜单：</strong>" not in html  # allauth's own layout
    return html


@pytest.mark.parametrize(("url", "zh", "en"), ANONYMOUS_PAGES)
def test_anonymous_account_pages_render_in_the_shop_layout_in_both_languages(client, url, zh, en):
    assert_shop_page(get_in(client, url, "zh-hans"), zh)
    assert_shop_page(get_in(client, url, "en"), en)


@pytest.mark.parametrize(("url", "zh", "en"), SIGNED_IN_PAGES)
def test_signed_in_account_pages_render_in_the_shop_layout_in_both_languages(client, user, url, zh, en):
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client.force_login(user)
    assert_shop_page(get_in(client, url, "zh-hans"), zh)
    assert_shop_page(get_in(client, url, "en"), en)


def test_password_reset_from_key_page_renders_in_both_languages(client, user):
    from allauth.account.forms import default_token_generator
    from allauth.account.utils import user_pk_to_url_str

    key = f"{user_pk_to_url_str(user)}-{default_token_generator.make_token(user)}"
    response = get_in(client, f"/accounts/password/reset/key/{key}/", "zh-hans")
    assert response.status_code == 302  # allauth moves the key out of the URL into the session
    assert_shop_page(client.get(response["Location"]), "修改密码")
    assert "新密码" in client.get(response["Location"]).content.decode()
    assert_shop_page(get_in(client, "/accounts/password/reset/key/bad-key/", "en"), "Bad Token")


def test_email_confirm_page_with_a_valid_key_offers_a_styled_confirm_button(client, user):
    address = EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)
    key = EmailConfirmationHMAC(address).key
    html = assert_shop_page(get_in(client, f"/accounts/confirm-email/{key}/", "en"), "Confirm Email Address")
    assert re.search(r'<button class="auth-button primary"[^>]*type="submit">\s*Confirm\s*</button>', html)


def test_sign_up_errors_are_shown_next_to_their_fields_in_the_shop_style(client, user):
    client.cookies["django_language"] = "zh-hans"
    response = client.post("/accounts/signup/", {"email": user.email, "password1": "short", "password2": "different"})
    html = assert_shop_page(response, "注册")
    assert re.search(r'<div class="field has-error">\s*<label for="id_email">', html)
    assert '<span class="error" id="id_email_error" role="alert">此电子邮件地址已被其他用户注册。</span>' in html
    assert '<span class="error" id="id_password1_error" role="alert">密码长度太短。密码必须包含至少 8 个字符。' in html
    assert '<div class="help" id="id_password1_helptext"><ul><li>' in html  # the validators' rules, in a div
    assert "This password is too short" not in html
    assert '<ul class="errorlist">' not in html  # not Django's default as_p rendering
    assert User.objects.count() == 1


def test_wrong_login_shows_one_form_error_in_the_shop_style(client, user):
    client.cookies["django_language"] = "en"
    response = client.post("/accounts/login/", {"login": user.email, "password": "wrong"})
    html = assert_shop_page(response, "Sign In")
    assert re.search(r'<p class="error auth-form-error" role="alert">The email address and/or password', html)


def test_sign_up_sends_one_verification_and_one_welcome_mail_in_the_shop_name(
    client, django_capture_on_commit_callbacks
):
    client.cookies["django_language"] = "zh-hans"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/accounts/signup/",
            {"email": "fresh@example.org", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
    assert response.status_code == 302
    assert len(mail.outbox) == 2
    verification = [m for m in mail.outbox if "/accounts/confirm-email/" in m.body]
    welcome = [m for m in mail.outbox if m.subject == "欢迎加入卡盟"]
    assert len(verification) == 1 and len(welcome) == 1
    message = verification[0]
    assert message.to == ["fresh@example.org"]
    assert message.subject == "[卡盟] 请确认您的邮箱地址"
    assert "卡盟" in message.body
    # allauth's default names the site by the request's host ("[testserver] …", "Hello from testserver!"):
    # only the confirmation link itself may carry it.
    body_without_link = re.sub(r"https?://testserver/accounts/confirm-email/\S+", "", message.body)
    for text in (message.subject, body_without_link, welcome[0].subject, welcome[0].body):
        assert "testserver" not in text and "example.com" not in text


def test_verification_mail_in_english_says_the_shop_name(client, django_capture_on_commit_callbacks):
    client.cookies["django_language"] = "en"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/accounts/signup/",
            {"email": "fresh@example.org", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
    verification = [m for m in mail.outbox if "/accounts/confirm-email/" in m.body]
    assert [m.subject for m in verification] == ["[Kameng] Confirm your e-mail address"]
    assert "Hello from Kameng!" in verification[0].body
    assert "testserver" not in re.sub(r"https?://testserver/accounts/confirm-email/\S+", "", verification[0].body)


@override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory")
def test_mandatory_verification_sign_up_sends_one_verification_mail_and_confirming_signs_in(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/accounts/signup/",
            {"email": "fresh@example.org", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
    assert response["Location"] == "/accounts/confirm-email/"
    verification = [m for m in mail.outbox if "/accounts/confirm-email/" in m.body]
    assert len(verification) == 1
    assert client.get("/me/").status_code == 302  # not signed in before confirming
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", verification[0].body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    response = client.post("/" + path)
    assert EmailAddress.objects.get(email="fresh@example.org").verified
    assert response.status_code == 302 and client.get("/me/").status_code == 200  # signed in by the link
    assert len([m for m in mail.outbox if m.subject == "欢迎加入卡盟"]) == 1


@override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory")
def test_the_verification_link_opened_in_another_browser_verifies_without_signing_in(
    client, django_capture_on_commit_callbacks
):
    from django.test import Client

    client.post(
        "/accounts/signup/", {"email": "fresh@example.org", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    body = next(m.body for m in mail.outbox if "/accounts/confirm-email/" in m.body)
    path = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+/)", body).group(1)
    other = Client()
    other.post(path)
    assert EmailAddress.objects.get(email="fresh@example.org").verified
    assert other.get("/me/").status_code == 302


def test_password_reset_mail_says_the_shop_name_not_the_host(client, user):
    client.cookies["django_language"] = "zh-hans"
    client.post("/accounts/password/reset/", {"email": user.email})
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject.startswith("[卡盟] ")
    assert "您好，这里是卡盟！" in message.body
    assert "testserver" not in re.sub(r"https?://testserver/accounts/password/reset/key/\S+", "", message.body)
