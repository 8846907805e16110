"""/me/settings/: delivery by e-mail and SMS, promotions and price drops (opt-in), saved on the user."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User

pytestmark = pytest.mark.django_db

ALL = ["notify_delivery_email", "notify_delivery_sms", "notify_promotions_email", "notify_promotions_sms",
       "notify_price_drops"]  # fmt: skip


def checked(html: str) -> set[str]:
    return {name for name in ALL if f'name="{name}" id="id_{name}" checked' in html}


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/me/settings/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_delivery_e_mail_is_on_and_everything_else_opt_in_by_default(client, user):
    client.force_login(user)
    html = client.get("/me/settings/").content.decode()
    assert checked(html) == {"notify_delivery_email"}
    assert "添加手机号" in html  # no number yet: the page offers to add one


def test_choices_are_saved(client, user):
    client.force_login(user)
    response = client.post("/me/settings/", {"notify_delivery_sms": "on", "notify_price_drops": "on"})
    assert response.status_code == 302 and response.url == "/me/settings/"
    user.refresh_from_db()
    assert [getattr(user, name) for name in ALL] == [False, True, False, False, True]
    assert checked(client.get("/me/settings/").content.decode()) == {"notify_delivery_sms", "notify_price_drops"}


def test_the_page_shows_the_number_masked_and_whether_it_is_verified(client, user):
    user.phone, user.phone_verified = "+8613800138000", True
    user.save()
    client.force_login(user)
    html = client.get("/me/settings/").content.decode()
    assert "+86138****8000" in html and "13800138000" not in html
    assert "已验证" in html


def test_linked_from_the_user_center(client, user):
    client.force_login(user)
    html = client.get("/me/").content.decode()
    assert 'href="/me/settings/"' in html and 'href="/accounts/phone/change/"' in html


def test_query_count_does_not_grow_with_the_shop(client, user):
    client.force_login(user)
    client.get("/me/settings/")
    with CaptureQueriesContext(connection) as few:
        assert client.get("/me/settings/").status_code == 200
    User.objects.bulk_create([User(email=f"u{n}@example.com", phone=f"+86139{n:08d}") for n in range(200)])
    with CaptureQueriesContext(connection) as many:
        assert client.get("/me/settings/").status_code == 200
    assert len(many) == len(few) <= 4
