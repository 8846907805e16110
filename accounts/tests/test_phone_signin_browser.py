"""On a phone: sign in with a mobile number and the code texted to it (read from the console SMS
backend's outbox), and find the guest order placed with that number in "my orders" (issue 13)."""

from __future__ import annotations

import pytest

from accounts.models import User
from orders.tests.conftest import place, stocked_sku  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_with_an_sms_code_on_a_phone(page, live_server, sms_outbox, stocked_sku):  # noqa: F811
    User.objects.create_user("sms.buyer@example.org", "pw-unused-here", phone="+8613800138000", phone_verified=True)
    guest_order = place(stocked_sku, phone="138 0013 8000").order  # placed signed out, earlier
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])

    page.goto("/accounts/login/")
    page.get_by_role("link", name="Send me a sign-in code").click()
    page.get_by_label("Mobile number").fill("138 0013 8000")
    page.get_by_role("button", name="Request Code").click()
    page.wait_for_url("**/accounts/login/code/confirm/")
    assert page.get_by_text("+8613800138000").first.is_visible()

    [message] = sms_outbox("+8613800138000")
    assert message["template"] == "verification"
    page.get_by_label("Code").fill(message["params"]["code"])
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    assert page.get_by_role("link", name="sms.buyer").is_visible()  # signed in: the header shows the name

    page.goto("/orders/")
    assert page.get_by_text(guest_order.number).is_visible()  # claimed by the verified number
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone
