"""The user-center home on a phone: cards and tiles fit the 390 px screen, the tiles are a grid
(several per row, not a list), and a count leads to its "my orders" tab."""

from __future__ import annotations

import pytest

from accounts.tests.test_wallet_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_home_on_a_phone_is_a_grid_of_cards_and_tiles(page, live_server, user, password):
    sign_in(page.context, live_server, user, password)
    page.goto("/me/")
    assert page.get_by_role("heading", name="Hello, 小明").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    tops = page.locator(".me-tiles > *").evaluate_all("els => els.map(e => e.getBoundingClientRect().top)")
    # orders, wallet, password, e-mail, mobile number, notifications (issue 13), sign out
    assert len(tops) == 7 and len(set(tops)) < len(tops)  # tiles share rows
    for box in page.locator(".me-card, .me-tiles > *").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().right)"
    ):
        assert box <= 390
    page.locator('.me-counts a[data-tab="unpaid"]').click()
    page.wait_for_url("**/orders/?tab=unpaid")
    assert page.locator('.order-tabs a[data-tab="unpaid"][aria-current="page"]').count() == 1
