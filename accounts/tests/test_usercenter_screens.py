"""Every page of the user center (/me/ and "my orders"), as a shopper sees it: in a real Chromium at
phone (390×844) and desktop (1440×900) size, in Chinese and English, for a buyer with history
(orders, points, a level, a membership, favourites, a leaderboard place) and for a new one (the
empty states). Each page must answer 200, fit the phone's width, raise no script error and load
nothing that fails; the screenshots are kept in test-artifacts/usercenter/ for people to look at."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import points
from accounts.models import PointsEntry, User
from accounts.tests.test_wallet_browser import sign_in
from catalog import codes, favourites
from catalog import services as catalog_services
from catalog.demo import seed_levels
from catalog.models import Sku
from kameng.testing.fixtures import ARTIFACTS
from orders import leaderboard
from orders.models import Membership, MembershipPlan
from orders.tests.conftest import pay, place

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    ("home", "/me/"),
    ("orders", "/orders/"),
    ("wallet", "/me/wallet/"),
    ("points", "/me/points/"),
    ("membership", "/me/membership/"),
    ("favourites", "/me/favourites/"),
    ("leaderboard", "/me/leaderboard/"),
    ("settings", "/me/settings/"),
]
SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
SHOTS = ARTIFACTS / "usercenter"


def with_history(user: User, demo_shop) -> None:
    seed_levels()
    stocked_sku = Sku.objects.create(product=demo_shop.products["steam-wallet"], label="截图", price_fen=1000)
    catalog_services.add_codes(sku=stocked_sku, secrets=[codes.Secret(f"S-{i:03d}") for i in range(5)])
    for _ in range(2):
        pay(place(stocked_sku, 1, buyer=user, email=user.email).order)
    place(stocked_sku, 1, buyer=user, email=user.email)  # one unpaid
    points.move(user=user, points=1_234, kind=PointsEntry.Kind.ADJUSTMENT, reference=f"screens-{user.pk}")
    plan = MembershipPlan.objects.filter(is_active=True).first()
    now = timezone.now()
    Membership.objects.create(
        user=user, plan=plan, discount_percent=plan.discount_percent, started_at=now - timedelta(days=30),
        ends_at=now + timedelta(days=200),
    )  # fmt: skip
    for slug in ("steam-wallet", "honor-of-kings"):
        favourites.add(user=user, product_id=demo_shop.products[slug].pk)
    leaderboard.refresh_all()


def look_at_every_page(browser, live_server, user, password, *, label: str, languages, sizes) -> list[str]:
    problems: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    for language in languages:
        for size in sizes:
            width, height = SIZES[size]
            context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
            sign_in(context, live_server, user, password)
            context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
            tab = context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            tab.on(
                "response",
                lambda response, errors=errors: (
                    errors.append(f"{response.status} {response.url}") if response.status >= 400 else None
                ),
            )
            for name, url in PAGES:
                response = tab.goto(url)
                where = f"{label} {language} {size} {url}"
                if response is None or response.status != 200:
                    problems.append(f"{where}: status {response.status if response else None}")
                if size == "phone" and tab.evaluate("document.documentElement.scrollWidth") > width:
                    problems.append(f"{where}: wider than the phone")
                problems.extend(f"{where}: {error}" for error in errors)
                errors.clear()
                tab.screenshot(path=str(SHOTS / f"{label}-{name}-{language}-{size}.png"), full_page=True)
            context.close()
    return problems


def test_every_user_center_page_with_history(browser, live_server, demo_shop, user, password):
    with_history(user, demo_shop)
    problems = look_at_every_page(
        browser, live_server, user, password, label="history", languages=["zh-hans", "en"], sizes=["phone", "desktop"]
    )
    assert problems == []
    assert len(list(SHOTS.glob("history-*.png"))) >= len(PAGES) * 4


def test_every_user_center_page_of_a_new_buyer(browser, live_server, demo_shop, user, password):
    problems = look_at_every_page(
        browser, live_server, user, password, label="new", languages=["zh-hans", "en"], sizes=["phone"]
    )
    assert problems == []
