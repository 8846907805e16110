"""Fixtures shared by every app's tests (a pytest plugin, loaded from pytest.ini).

* Celery runs tasks eagerly (in the test's thread) unless the test asks for ``celery_worker``,
  which starts a real worker thread consuming from the test Redis.
* The cache (Redis) is emptied after each test, so rate limits and locks never leak.
* ``browser``/``page`` drive Debian's Chromium through Playwright.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


# --- Speed ----------------------------------------------------------------------------------------
@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """PBKDF2 with a million rounds costs ~0.5 s per user created; tests don't need it."""
    from django.conf import settings
    from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()


# --- Celery ---------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _celery_eager_by_default():
    from kameng.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (solo pool, in a thread) consuming from the test Redis."""
    from celery.contrib.testing.worker import start_worker

    from kameng.celery import app

    app.conf.task_always_eager = False
    app.control.purge()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20, loglevel="WARNING") as worker:
        yield worker
    app.control.purge()
    # A worker thread leaves Celery's "inside a task" flag set for this process, after which an
    # eager result's .get() refuses to run ("Never call result.get() within a task!").
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts in the shop's default language (Chinese). A request through the test client
    leaves its language active in the thread, so without this a test would see whichever language
    the test before it used. Tests that assert English source strings say so (``translation.override``)."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _warm_shop_settings(request):
    """Pages read the shop's settings from one cache entry (catalog/shop.py), built by the first page
    after a change and then kept: tests start with it built, as a running shop has it, so a page's
    query count is its steady state from the first view (a test that changes the settings drops it,
    as a save does)."""
    names = set(request.fixturenames)
    if request.node.get_closest_marker("django_db") is None and not names & {"db", "transactional_db"}:
        return
    request.getfixturevalue("_django_db_helper")  # the database as the test asked for it, set up now
    from catalog.shop import snapshot

    snapshot()


@pytest.fixture(autouse=True)
def _clear_cache():
    yield
    from django.core.cache import cache

    cache.clear()


# --- People and goods -------------------------------------------------------------------------------
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def user(db):
    from accounts.models import User

    return User.objects.create_user(email="buyer@example.com", password=PASSWORD, nickname="小明")


@pytest.fixture
def operator(db):
    from accounts.models import User

    return User.objects.create_superuser(email="operator@example.com", password=PASSWORD)


@pytest.fixture
def demo_shop(db):
    from catalog.demo import seed_demo

    # Without the demo member levels: a test that wants levels defines its own, so a buyer's
    # second order in another test is not priced at a level it happened to reach.
    return seed_demo(with_users=False, with_levels=False)


@pytest.fixture
def merchant_staff(demo_shop):
    """Back-office staff of the demo merchant (not of ``demo_shop.other_merchant``)."""
    from accounts.models import User
    from accounts.roles import add_merchant_staff

    staff = User.objects.create_user(email="staff@merchant.example", password=PASSWORD)
    add_merchant_staff(merchant=demo_shop.merchant, user=staff)
    return staff


@pytest.fixture
def other_merchant_staff(demo_shop):
    from accounts.models import User
    from accounts.roles import add_merchant_staff

    staff = User.objects.create_user(email="staff@other.example", password=PASSWORD)
    add_merchant_staff(merchant=demo_shop.other_merchant, user=staff)
    return staff


@pytest.fixture
def sms_outbox(settings, tmp_path):
    """SMS go to the console backend's outbox in a fresh folder; returns its reader
    (``sms_outbox(phone)``: the messages to that number, oldest first)."""
    from accounts import sms

    settings.SMS_BACKEND = "console"
    settings.SMS_OUTBOX_DIR = str(tmp_path / "sms")
    return sms.outbox


# --- Browser ----------------------------------------------------------------------------------------
def chromium_path() -> str:
    configured = os.environ.get("CHROMIUM_PATH")
    for candidate in ([configured] if configured else []) + list(CHROMIUM_CANDIDATES):
        if candidate and shutil.which(candidate):
            return candidate
    pytest.fail("Chromium not found: install Debian's package with `sudo apt-get install -y chromium`", pytrace=False)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the Django ORM calls that tests
    # make next to it are still synchronous, so Django's async guard must not fire.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        )  # fmt: skip
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server, request):
    """A phone-sized page; a screenshot lands in test-artifacts/ when the test fails."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
