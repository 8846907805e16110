import pytest
from django.core import mail

from accounts import services
from accounts.models import User

pytestmark = pytest.mark.django_db


def test_sign_up_with_email_logs_in_and_sends_one_welcome_mail(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/accounts/signup/",
            {"email": "New.Buyer@Example.com", "password1": "a-long-Passw0rd!", "password2": "a-long-Passw0rd!"},
        )
    assert response.status_code == 302
    user = User.objects.get(email="new.buyer@example.com")
    assert user.welcome_sent_at is not None
    welcome = [m for m in mail.outbox if m.subject == "欢迎加入卡盟"]
    assert [m.to for m in welcome] == [["new.buyer@example.com"]]
    assert "账户已开通" in welcome[0].body
    assert welcome[0].alternatives[0].mimetype == "text/html"
    assert "new.buyer" in client.get("/").content.decode()  # signed in, shown in the header


def test_welcome_mail_is_sent_at_most_once(user):
    assert services.send_welcome_email(user_id=user.pk) is True
    assert services.send_welcome_email(user_id=user.pk) is False
    assert len(mail.outbox) == 1


def test_welcome_mail_for_a_deleted_user_is_a_no_op(user):
    user_id = user.pk
    user.delete()
    assert services.send_welcome_email(user_id=user_id) is False
    assert mail.outbox == []


def test_login_with_email_and_logout(client, user, password):
    response = client.post("/accounts/login/", {"login": "BUYER@example.com", "password": password})
    assert response.status_code == 302
    assert client.get("/me/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/me/").status_code == 302


def test_wrong_password_is_refused_with_a_message(client, user):
    response = client.post("/accounts/login/", {"login": user.email, "password": "wrong"})
    assert response.status_code == 200
    assert "不正确" in response.content.decode()


def test_login_failures_are_rate_limited(client, user, password):
    for _ in range(5):
        client.post("/accounts/login/", {"login": user.email, "password": "wrong"})
    # Locked out: even the right password is refused for now.
    response = client.post("/accounts/login/", {"login": user.email, "password": password})
    assert response.status_code == 200
    assert "登录失败次数过多" in response.content.decode()
    assert client.get("/me/").status_code == 302


def test_password_reset_mails_a_link(client, user):
    response = client.post("/accounts/password/reset/", {"email": user.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def test_user_manager_normalises_email_and_requires_it():
    created = User.objects.create_user(email="MiXeD@Example.COM", password="x")
    assert created.email == "mixed@example.com"
    assert created.get_username() == "mixed@example.com"
    with pytest.raises(ValueError, match="e-mail"):
        User.objects.create_user(email="", password="x")
