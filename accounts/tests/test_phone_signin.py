"""Phone numbers through allauth's phone support: sign-in with an SMS code (expiring, single-use,
limited per number and per IP), password sign-in with a number, adding and verifying a number,
sign-up with a number. SMS go to the console backend's outbox (a temporary folder)."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client

from accounts.models import User

pytestmark = pytest.mark.django_db

NUMBER = "+8613800138000"
TYPED = "138 0013 8000"  # how a buyer in China types it


@pytest.fixture
def phone_user(user):
    user.phone, user.phone_verified = NUMBER, True
    user.save()
    return user


def codes(outbox, phone=NUMBER) -> list[str]:
    return [m["params"]["code"] for m in outbox(phone) if m["template"] == "verification"]


def request_code(client, phone=TYPED):
    return client.post("/accounts/login/code/", {"phone": phone})


def test_sign_in_with_an_sms_code(client, phone_user, sms_outbox):
    response = request_code(client)
    assert response.status_code == 302 and response.url.startswith("/accounts/login/code/confirm/")
    [code] = codes(sms_outbox)
    assert re.fullmatch(r"\d{6}", code)
    response = client.post("/accounts/login/code/confirm/", {"code": code})
    assert response.status_code == 302
    assert client.get("/me/").status_code == 200  # signed in


def test_the_code_page_asks_for_a_mobile_number_only(client):
    html = client.get("/accounts/login/code/").content.decode()
    assert 'type="tel"' in html and 'name="phone"' in html
    assert 'name="email"' not in html


def test_a_code_is_single_use(client, phone_user, sms_outbox):
    request_code(client)
    [code] = codes(sms_outbox)
    assert client.post("/accounts/login/code/confirm/", {"code": code}).status_code == 302
    client.post("/accounts/logout/")
    # Replayed after use (the same browser, the same code): there is no code to confirm any more.
    replay = client.post("/accounts/login/code/confirm/", {"code": code})
    assert replay.status_code == 302 and "/confirm/" not in replay.url
    assert client.get("/me/").status_code == 302
    # Nor from another browser.
    other = Client()
    assert other.post("/accounts/login/code/confirm/", {"code": code}).status_code == 302
    assert other.get("/me/").status_code == 302


def test_a_code_expires(client, phone_user, sms_outbox, monkeypatch, settings):
    request_code(client)
    [code] = codes(sms_outbox)
    later = time.time() + settings.ACCOUNT_LOGIN_BY_CODE_TIMEOUT + 1
    monkeypatch.setattr(time, "time", lambda: later)
    response = client.post("/accounts/login/code/confirm/", {"code": code})
    assert response.status_code == 302 and response.url.startswith("/accounts/login/code/")
    assert "/confirm/" not in response.url
    assert client.get("/me/").status_code == 302


def test_three_wrong_codes_end_the_attempt(client, phone_user, sms_outbox):
    request_code(client)
    [code] = codes(sms_outbox)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        client.post("/accounts/login/code/confirm/", {"code": wrong})
    client.post("/accounts/login/code/confirm/", {"code": code})
    assert client.get("/me/").status_code == 302


def test_an_unknown_number_gets_no_sms_and_the_same_answer(client, sms_outbox):
    response = request_code(client, "139 0013 9000")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/code/confirm/")
    assert sms_outbox() == []  # no text to a stranger's phone, and no hint the number is unknown


def test_an_invalid_number_is_refused_at_the_form(client, sms_outbox):
    response = request_code(client, "12345")
    assert response.status_code == 200
    assert "手机号" in response.content.decode()
    assert sms_outbox() == []


def test_sign_in_with_number_and_password(client, phone_user, password):
    response = client.post("/accounts/login/", {"login": TYPED, "password": password})
    assert response.status_code == 302
    assert client.get("/me/").status_code == 200


def test_password_failures_count_per_number_however_it_is_typed(client, phone_user, password):
    for typed in ["138 0013 8000", "+86 138 0013 8000", "13800138000", "+8613800138000", "138-0013-8000"]:
        client.post("/accounts/login/", {"login": typed, "password": "wrong"})
    response = client.post("/accounts/login/", {"login": NUMBER, "password": password})
    assert "登录失败次数过多" in response.content.decode()


# -- limits ---------------------------------------------------------------------------------------------


def test_a_second_code_for_the_same_number_within_a_minute_is_refused(client, phone_user, sms_outbox):
    request_code(client)
    response = request_code(Client(), "+86 13800138000")  # another browser, the number typed otherwise
    assert response.status_code == 200
    assert "次数过多" in response.content.decode()
    assert len(codes(sms_outbox)) == 1


def test_code_requests_are_limited_per_ip(client, sms_outbox, settings):
    numbers = [f"+86139{n:08d}" for n in range(11)]
    for n, number in enumerate(numbers):
        User.objects.create_user(f"u{n}@example.com", "pw", phone=number, phone_verified=True)
    for number in numbers[:10]:
        assert request_code(Client(), number).status_code == 302
    response = request_code(Client(), numbers[10])  # allauth's request_login_code: 10/m/ip
    assert response.status_code == 200 and "次数过多" in response.content.decode()
    assert len(sms_outbox()) == 10 and sms_outbox(numbers[10]) == []


def test_resending_passes_the_sms_limit_per_number(client, phone_user, sms_outbox):
    request_code(client)
    response = client.post("/accounts/login/code/confirm/", {"action": "resend"}, follow=True)
    assert len(codes(sms_outbox)) == 1  # within a minute of the first: not sent
    assert "请稍等，您已经提交过多次请求" in response.content.decode()
    [code] = codes(sms_outbox)
    client.post("/accounts/login/code/confirm/", {"code": code})  # the code already sent still works
    assert client.get("/me/").status_code == 200


def test_the_sms_limit_per_ip_holds_across_numbers_and_flows(client, settings, sms_outbox):
    settings.SMS_CODE_RATE_LIMITS = "1/m/key,2/h/ip"
    for n in range(3):
        User.objects.create_user(f"u{n}@example.com", "pw", phone=f"+86139000000{n:02d}", phone_verified=True)
    assert request_code(Client(), "+8613900000000").status_code == 302
    assert request_code(Client(), "+8613900000001").status_code == 302
    third = request_code(Client(), "+8613900000002")
    assert third.status_code == 429
    assert len([m for m in sms_outbox() if m["template"] == "verification"]) == 2


# -- adding and verifying a number in the account -------------------------------------------------------


def sign_in(client, user, password):
    assert client.post("/accounts/login/", {"login": user.email, "password": password}).status_code == 302


def test_add_and_verify_a_number(client, user, password, sms_outbox):
    sign_in(client, user, password)
    response = client.post("/accounts/phone/change/", {"phone": TYPED})
    assert response.status_code == 302 and response.url == "/accounts/phone/verify/"
    user.refresh_from_db()
    assert str(user.phone) == ""  # not the account's until verified
    [code] = codes(sms_outbox)
    assert client.post("/accounts/phone/verify/", {"code": code}).status_code == 302
    user.refresh_from_db()
    assert (str(user.phone), user.phone_verified) == (NUMBER, True)  # stored in E.164


def test_a_verification_code_expires(client, user, password, sms_outbox, monkeypatch, settings):
    sign_in(client, user, password)
    client.post("/accounts/phone/change/", {"phone": TYPED})
    [code] = codes(sms_outbox)
    later = time.time() + settings.ACCOUNT_PHONE_VERIFICATION_TIMEOUT + 1
    monkeypatch.setattr(time, "time", lambda: later)
    client.post("/accounts/phone/verify/", {"code": code})
    user.refresh_from_db()
    assert not user.phone_verified


def test_a_number_verified_by_someone_else_cannot_be_added(client, user, password, phone_user, sms_outbox):
    other = User.objects.create_user("other@example.com", password)
    sign_in(client, other, password)
    # allauth's enumeration prevention: the form does not say the number is taken, a code goes out…
    assert client.post("/accounts/phone/change/", {"phone": TYPED}).status_code == 302
    [code] = codes(sms_outbox)
    # …and the right code still does not move the number to this account.
    response = client.post("/accounts/phone/verify/", {"code": code})
    assert response.status_code == 200
    other.refresh_from_db()
    phone_user.refresh_from_db()
    assert str(other.phone) == "" and (str(phone_user.phone), phone_user.phone_verified) == (NUMBER, True)


def test_sign_up_with_a_number_verifies_it_by_sms(client, sms_outbox):
    response = client.post(
        "/accounts/signup/",
        {"email": "new@example.com", "phone": TYPED, "password1": "a-long-Passw0rd!", "password2": "a-long-Passw0rd!"},
    )
    assert response.status_code == 302 and response.url == "/accounts/phone/verify/"
    [code] = codes(sms_outbox)
    assert client.post("/accounts/phone/verify/", {"code": code}).status_code == 302
    user = User.objects.get(email="new@example.com")
    assert (str(user.phone), user.phone_verified) == (NUMBER, True)
    assert client.get("/me/").status_code == 200


def test_an_unverified_number_does_not_sign_in_by_code(client, user, sms_outbox):
    user.phone, user.phone_verified = NUMBER, False
    user.save()
    request_code(client)
    assert sms_outbox() == []  # whoever holds that phone gets no way into this account


def test_an_unverified_number_does_not_hold_up_a_password_sign_in(client, user, password, sms_outbox):
    # A number kept from before verification existed, or typed at an abandoned sign-up.
    user.phone, user.phone_verified = NUMBER, False
    user.save()
    sign_in(client, user, password)
    assert client.get("/me/").status_code == 200
    assert sms_outbox() == []


def test_the_code_field_says_verification_code_not_card_code(client, phone_user, sms_outbox):
    request_code(client)
    html = client.get("/accounts/login/code/confirm/").content.decode()
    assert "验证码" in html and "卡号" not in html
    assert 'inputmode="numeric"' in html and 'autocomplete="one-time-code"' in html
