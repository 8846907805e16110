"""The category and product pages with pictures, placeholders and tags, in a real Chromium at phone
(390×844) and desktop (1440×900) size, in Chinese and English. Each page answers 200, fits the phone,
loads every picture (no broken image, no layout shift from late pictures) and raises no script error;
screenshots go to test-artifacts/content/ for people to look at."""

from __future__ import annotations

import mimetypes
from pathlib import Path

import pytest

from catalog.demo import seed_demo
from kameng.testing.fixtures import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
PAGES = [
    ("category", "/c/game-cards/"),
    ("category-tag", "/c/game-cards/?tag=official"),
    ("product", "/p/steam-wallet/"),
    ("product-fallback", "/p/python-course/"),  # no picture, no English texts
    ("tag", "/tags/instant/"),
]
SHOTS = ARTIFACTS / "content"


def serve_media(context, media_root: Path) -> None:
    """The test server does not serve media (DEBUG off; the front proxy does in production)."""

    def handle(route):
        name = route.request.url.split("/media/", 1)[1].split("?", 1)[0]
        path = media_root / name
        if not path.is_file():
            route.fulfill(status=404, body="")
            return
        route.fulfill(status=200, body=path.read_bytes(), content_type=mimetypes.guess_type(path.name)[0] or "")

    context.route("**/media/**", handle)


def test_category_and_product_pages_with_pictures_and_tags(browser, live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    seed_demo(with_users=False, with_levels=False, with_images=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for language in ("zh-hans", "en"):
        for size, (width, height) in SIZES.items():
            context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url)
            context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
            serve_media(context, Path(settings.MEDIA_ROOT))
            tab = context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            tab.on(
                "response", lambda r, errors=errors: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None
            )
            for name, url in PAGES:
                where = f"{language} {size} {url}"
                response = tab.goto(url)
                if response is None or response.status != 200:
                    problems.append(f"{where}: status {response.status if response else None}")
                # Lazy pictures below the fold: scroll through so they load, then check them all.
                tab.evaluate("window.scrollTo(0, document.body.scrollHeight)")
                tab.wait_for_load_state("networkidle")
                broken = tab.evaluate(
                    "[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))"
                )
                problems.extend(f"{where}: broken picture {src}" for src in broken)
                unsized = tab.evaluate(
                    "[...document.querySelectorAll('.card-image, .product-image, .gallery img')]"
                    ".filter(i => !i.getAttribute('width') || !i.getAttribute('height')).length"
                )
                if unsized:
                    problems.append(f"{where}: {unsized} pictures without width/height")
                if size == "phone" and tab.evaluate("document.documentElement.scrollWidth") > width:
                    problems.append(f"{where}: wider than the phone")
                problems.extend(f"{where}: {error}" for error in errors)
                errors.clear()
                tab.evaluate("window.scrollTo(0, 0)")
                tab.screenshot(path=str(SHOTS / f"{name}-{language}-{size}.png"), full_page=True)
            if language == "en":
                tab.goto("/p/python-course/")
                assert tab.locator("section.description[lang='zh-Hans']").count() == 1
                assert tab.locator(".denomination .untranslated[lang='zh-Hans']").count() == 2
            context.close()
    assert problems == []
    assert len(list(SHOTS.glob("*.png"))) >= len(PAGES) * 4
