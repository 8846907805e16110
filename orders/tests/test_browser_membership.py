"""A buyer on a phone becomes an annual member through the sandbox and then sees the member price."""

from __future__ import annotations

import re

import pytest

from accounts.tests.test_wallet_browser import sign_in
from orders import membership
from orders.models import MembershipPlan, Order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_buy_a_membership_on_a_phone_then_see_the_member_price(page, live_server, demo_shop, user, password):
    assert MembershipPlan.objects.get().price_fen == 9_900  # the demo shop's plan (seed_demo)
    sign_in(page.context, live_server, user, password)

    page.goto("/p/steam-wallet/")
    assert page.get_by_text("Annual members save 5% on every order.").is_visible()
    page.get_by_role("link", name="Become a member").click()
    page.wait_for_url("**/me/membership/")
    assert page.get_by_text("You are not a member yet.").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.get_by_role("button", name="Buy").click()
    page.wait_for_url(re.compile(r"/orders/K\d+/$"))
    assert page.get_by_text("Membership: Annual membership, 365 days, ¥99.00").is_visible()
    page.get_by_role("button", name=re.compile(r"^Pay ¥99\.00 with")).first.click()
    page.wait_for_url("**/payments/sandbox/**")
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url(re.compile(r"/orders/K\d+/$"))
    assert page.locator("p.status").inner_text() == "Membership active"
    assert Order.objects.get().status == Order.Status.DELIVERED and membership.active_membership(user)

    page.goto("/me/")
    assert page.locator('[data-card="membership"]').get_by_text(re.compile(r"^Active until")).is_visible()
    page.goto("/p/steam-wallet/")
    assert page.get_by_text("Member price ¥91.67").is_visible()  # 100元 at ¥96.50, 5% (¥4.825 → ¥4.83) off
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
