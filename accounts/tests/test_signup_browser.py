"""On a phone: sign up, follow the e-mailed verification link, arrive signed in (issue 13)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import override_settings

from accounts.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory")
def test_sign_up_verify_by_link_and_arrive_signed_in(page, live_server):
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page.goto("/accounts/signup/")
    assert page.locator(".site-header").is_visible()  # the shop's frame, not allauth's bare page
    page.get_by_label("Email").fill("phone.buyer@example.org")
    page.get_by_label("Password", exact=True).fill("a-long-Passw0rd!")
    page.get_by_label("Password (again)").fill("a-long-Passw0rd!")
    page.get_by_role("button", name="Sign Up").click()

    page.wait_for_url("**/accounts/confirm-email/")
    assert page.get_by_role("heading", name="Verify Your Email Address").is_visible()
    verification = [m for m in mail.outbox if "/accounts/confirm-email/" in m.body]
    assert len(verification) == 1
    assert verification[0].subject == "[Kameng] Confirm your e-mail address"
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", verification[0].body).group(0)
    assert link.startswith(live_server.url)

    page.goto(link)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(lambda url: "/accounts/confirm-email/" not in url)
    assert page.get_by_role("link", name="phone.buyer").is_visible()  # signed in: the header shows the name
    page.goto("/me/")
    assert page.get_by_role("heading", name="Hello, phone.buyer").is_visible()  # the user-center home greets
    assert User.objects.get(email="phone.buyer@example.org").emailaddress_set.get().verified
    assert len([m for m in mail.outbox if m.subject == "Welcome to Kameng"]) == 1
