"""The promotions report and the price preview per role as an operator sees them: in a real Chromium at
phone (390×844) and desktop (1440×900) size, in Chinese and English. Each page answers 200, fits the
phone's width, raises no script error, loads nothing that fails, and the report's chart is drawn (from
the vendored ECharts). Screenshots are kept in test-artifacts/backoffice/ for people to look at."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.test_wallet_browser import sign_in
from kameng.testing.fixtures import ARTIFACTS
from marketing.tests.test_promotions_report import sales  # noqa: F401  (fixture)
from orders.tests.test_price_preview import setup  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
SHOTS = ARTIFACTS / "backoffice"


def test_report_and_price_preview_screens(browser, live_server, operator, password, sales, setup):  # noqa: F811
    today = f"{timezone.localdate():%Y-%m-%d}"
    pages = [
        ("report", f"{reverse('admin:marketing_promotions_report')}?start={today}&end={today}"),
        ("price-preview", f"{reverse('admin:orders_price_preview', args=[setup['sku'].pk])}?quantity=5"),
    ]
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for language in ("zh-hans", "en"):
        for size, (width, height) in SIZES.items():
            context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
            sign_in(context, live_server, operator, password)
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
            for name, url in pages:
                response = tab.goto(url)
                assert response is not None and response.status == 200, (name, language, size)
                if name == "report":
                    tab.wait_for_selector("#promotions-chart svg")
                overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                if overflow > 0:
                    problems.append(f"{name} {language} {size}: {overflow}px wider than the screen")
                tab.screenshot(path=str(SHOTS / f"{name}-{language}-{size}.png"), full_page=True)
            problems += [f"{language} {size}: {error}" for error in errors]
            context.close()
    assert problems == []
