"""Invite a friend in the browser, phone first: the inviter opens /me/invite/ (empty: the link, the
code and a QR code that loads from our own URL), a friend opens the link in another browser and signs
up, buys, and the inviter sees them masked with the commission pending. With ``KAMENG_SHOTS=<dir>``
the page is saved there at 390×844 and 1440×900 in Chinese and English (orders' ``shoot``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import User
from accounts.tests.test_wallet_browser import sign_in
from marketing.models import Referral, ReferralProgram
from orders.tests.conftest import pay, place
from orders.tests.test_browser_loyalty import fits_a_phone, shoot
from payments import settlement

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_friend_signs_up_through_the_link_and_the_inviter_sees_them_and_the_commission(
    page, live_server, demo_shop, stocked_sku, user, password, settings
):
    settings.SITE_URL = live_server.url  # the invite link is built from SITE_URL, never the request's host
    config = ReferralProgram.load()
    config.enabled, config.level1_rate, config.hold_days = True, Decimal("0.05"), 7
    config.save()
    demo_shop.merchant.commission_rate = Decimal("0.20")
    demo_shop.merchant.save(update_fields=["commission_rate"])
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page.context, live_server, user, password)
    page.goto("/me/invite/")
    assert page.get_by_text("Nobody has signed up through your link yet.").is_visible()
    assert page.evaluate("document.querySelector('.invite-qr').naturalWidth") > 0
    fits_a_phone(page)
    shoot(page, "invite-empty")
    link = page.locator("#invite-link").input_value()
    assert link.startswith(live_server.url) and "?invite=" in link

    friend = page.context.browser.new_context(viewport={"width": 390, "height": 844})
    other = friend.new_page()
    other.goto(link)
    other.goto(f"{live_server.url}/accounts/signup/")
    other.fill("input[name=email]", "friend@example.com")
    other.fill("input[name=password1]", password)
    if other.locator("input[name=password2]").count():
        other.fill("input[name=password2]", password)
    other.locator("form[action$='/accounts/signup/'] [type=submit]").click()
    other.wait_for_load_state()
    friend.close()
    newcomer = User.objects.get(email="friend@example.com")
    assert Referral.objects.get(invitee=newcomer).inviter == user

    order = place(stocked_sku, 2, buyer=newcomer, email=newcomer.email).order
    pay(order)
    settlement.create_due_settlements()
    page.goto("/me/invite/")
    assert page.get_by_text("1 friend invited").is_visible()
    assert page.locator(".invitees li").first.inner_text().startswith("f***@example.com")
    assert page.locator("#commission-pending").inner_text() == "¥1.00"  # 5% of ¥20
    fits_a_phone(page)
    shoot(page, "invite-with-invitees")
    page.goto("/me/")
    assert page.locator("#me-commission").is_visible()
    shoot(page, "me-home")
