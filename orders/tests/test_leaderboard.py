"""The spending leaderboard (orders/leaderboard.py, /me/leaderboard/): paid minus refunded goods
orders per buyer, this week / month / all time, masked names, opt-out, own rank, cached."""

from __future__ import annotations

import datetime
import itertools
import re

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from orders import leaderboard
from orders.models import Order

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)
NOW = timezone.make_aware(datetime.datetime(2026, 12, 16, 12, 0))  # a Wednesday


def buyer(email: str, nickname: str = "", **extra) -> User:
    return User.objects.create_user(email=email, password="x-password-123", nickname=nickname, **extra)


def order(user, total_fen: int, *, refunded_fen: int = 0, status="delivered", kind="goods", paid_at=NOW) -> Order:
    n = next(_numbers)
    return Order.objects.create(
        number=f"LB{n:010d}", kind=kind, buyer=user, email=user.email if user else "guest@example.com",
        status=status, subtotal_fen=total_fen, total_fen=total_fen, refunded_fen=refunded_fen,
        reserved_until=paid_at or NOW, idempotency_key=f"lb-{n}", paid_at=paid_at,
    )  # fmt: skip


def signed_in(user, language: str = "en") -> Client:
    browser = Client()
    browser.cookies["django_language"] = language
    browser.force_login(user)
    return browser


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize(
    ("nickname", "email", "masked"),
    [
        ("张小三", "z@example.com", "张*三"),
        ("张三", "z@example.com", "张*"),
        ("欧阳娜娜子", "z@example.com", "欧*子"),
        ("K", "z@example.com", "*"),
        ("", "alice@qq.com", "a***@qq.com"),
        ("", "a@qq.com", "a***@qq.com"),
        ("  ", "bob@163.com", "b***@163.com"),
    ],
)
def test_names_are_masked(nickname, email, masked):
    assert leaderboard.mask_name(nickname=nickname, email=email) == masked


def test_periods_start_at_local_midnight():
    local = timezone.localtime(NOW)
    assert timezone.localtime(leaderboard.period_start("week", now=NOW)).date() == datetime.date(2026, 12, 14)
    assert timezone.localtime(leaderboard.period_start("month", now=NOW)).date() == datetime.date(2026, 12, 1)
    assert timezone.localtime(leaderboard.period_start("week", now=NOW)).hour == 0
    assert leaderboard.period_start("all", now=NOW) is None
    assert local.tzinfo is not None


def test_spend_is_paid_minus_refunded_goods_only():
    alice, bob, carol = buyer("alice@qq.com"), buyer("bob@example.com", "王小波"), buyer("carol@example.com")
    order(alice, 10_000)
    order(alice, 5_000, refunded_fen=2_000, status="refunded")  # partly refunded: 3,000 count
    order(alice, 7_000, refunded_fen=7_000, status="refunded")  # fully refunded: nothing
    order(alice, 9_999, kind="top_up")  # a wallet top-up is not spending
    order(alice, 8_000, status="pending_payment", paid_at=None)
    order(alice, 8_000, status="expired", paid_at=None)
    order(alice, 8_000, status="refunding")  # not final: not counted until it is
    order(bob, 20_000, status="paid")
    order(bob, 1_000, status="processing")
    order(None, 50_000)  # a guest's order has nobody to rank
    order(carol, 13_000)
    board = leaderboard.compute("all", now=NOW)
    assert [(e.rank, e.name, e.spent_fen) for e in board.top] == [
        (1, "王*波", 21_000),
        (2, "a***@qq.com", 13_000),
        (2, "c***@example.com", 13_000),
    ]
    spent = {e.user_id: e.spent_fen for e in board.top}
    assert spent == {bob.pk: 21_000, alice.pk: 13_000, carol.pk: 13_000}
    ranks = {e.user_id: e.rank for e in board.top}
    assert ranks == {bob.pk: 1, alice.pk: 2, carol.pk: 2}  # equal spend, equal rank
    assert [e.user_id for e in board.top] == [bob.pk, alice.pk, carol.pk]  # ties by id, stable


def test_week_month_and_all_time():
    alice, bob = buyer("alice@qq.com"), buyer("bob@example.com")
    order(alice, 100, paid_at=NOW)
    order(bob, 500, paid_at=NOW - datetime.timedelta(days=5))  # last week, this month
    order(bob, 900, paid_at=NOW - datetime.timedelta(days=40))  # last month
    week, month, all_time = (leaderboard.compute(p, now=NOW) for p in ("week", "month", "all"))
    assert [(e.user_id, e.spent_fen) for e in week.top] == [(alice.pk, 100)]
    assert [(e.user_id, e.spent_fen) for e in month.top] == [(bob.pk, 500), (alice.pk, 100)]
    assert [(e.user_id, e.spent_fen) for e in all_time.top] == [(bob.pk, 1400), (alice.pk, 100)]


def test_hidden_and_inactive_users_are_not_ranked():
    alice = buyer("alice@qq.com")
    shy = buyer("shy@example.com", show_on_leaderboard=False)
    gone = buyer("gone@example.com", is_active=False)
    for user in (alice, shy, gone):
        order(user, 1000)
    board = leaderboard.compute("all", now=NOW)
    assert [e.user_id for e in board.top] == [alice.pk]
    assert board.ranked == 1


def test_own_rank_beyond_the_top_list(settings):
    settings.LEADERBOARD_SIZE = 3
    people = [buyer(f"u{n}@example.com") for n in range(6)]
    for n, person in enumerate(people):
        order(person, 1000 * (n + 1))  # u5 spent most
    board = leaderboard.compute("all", now=NOW)
    assert len(board.top) == 3 and board.ranked == 6
    assert leaderboard.standing(user=people[0], board=board, now=NOW) == leaderboard.Standing(1000, 6, True)
    assert leaderboard.standing(user=people[5], board=board, now=NOW).rank == 1
    nobody = buyer("nobody@example.com")
    assert leaderboard.standing(user=nobody, board=board, now=NOW).rank is None


def test_the_board_is_cached_and_refreshed_by_the_beat_task():
    alice = buyer("alice@qq.com")
    order(alice, 1000)
    first = leaderboard.board("all")
    order(alice, 500)
    assert leaderboard.board("all").top[0].spent_fen == 1000  # served from the cache
    from orders.tasks import refresh_leaderboard

    assert refresh_leaderboard.delay().get() == 1
    assert leaderboard.board("all").top[0].spent_fen == 1500
    assert first.computed_at <= leaderboard.board("all").computed_at
    entry = settings.CELERY_BEAT_SCHEDULE["orders.refresh_leaderboard"]
    assert entry["task"] == "orders.tasks.refresh_leaderboard"
    assert entry["schedule"] < settings.LEADERBOARD_CACHE_SECONDS  # recomputed before it expires


# --- The page ----------------------------------------------------------------------------------
def test_the_page_has_three_tabs_the_list_and_my_rank(user):
    rich = buyer("rich@qq.com", "张小三")
    order(rich, 99_900)
    order(user, 1_000)
    order(user, 50_000, paid_at=timezone.now() - datetime.timedelta(days=400))
    browser = signed_in(user)
    page = browser.get("/me/leaderboard/").content.decode()
    tabs = re.findall(r'<a href="\?period=(\w+)"( aria-current="page")?>([^<]+)</a>', page)
    assert [(name, bool(current), label) for name, current, label in tabs] == [
        ("week", False, "This week"),
        ("month", True, "This month"),
        ("all", False, "All time"),
    ]
    text = text_of(page)
    assert "张*三" in text and "¥999.00" in text
    assert "rich@qq.com" not in page and "张小三" not in page
    assert "Your rank: #2" in text and "You spent ¥10.00" in text
    board = re.search(r'<ol class="board">(.*?)</ol>', page, re.S).group(1)
    assert "小明" not in board and "小*" in text_of(board)  # the user's own nickname is masked too
    assert re.search(r'class="board-row[^"]* is-me">.*?you</span>', page, re.S)

    text = text_of(browser.get("/me/leaderboard/?period=all").content.decode())
    assert "Your rank: #2" in text and "You spent ¥510.00" in text  # older orders count all time


def test_hide_me_takes_me_off_the_list_and_back(user, django_capture_on_commit_callbacks):
    order(user, 1_000)
    browser = signed_in(user)
    assert "小*" in text_of(browser.get("/me/leaderboard/").content.decode())
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post("/me/leaderboard/visibility/", {"show": "0", "period": "week"})
    assert response.status_code == 302 and response["Location"] == "/me/leaderboard/?period=week"
    user.refresh_from_db()
    assert user.show_on_leaderboard is False
    page = text_of(browser.get("/me/leaderboard/").content.decode())
    assert "小*" not in page.split("Hide me")[-1]
    assert "You are hidden; you would be #1" in page and "Show me on the leaderboard" in page
    with django_capture_on_commit_callbacks(execute=True):
        browser.post("/me/leaderboard/visibility/", {"show": "1"})
    assert "Your rank: #1" in text_of(browser.get("/me/leaderboard/").content.decode())


def test_a_hidden_user_never_sees_themselves_listed_even_before_the_refresh(user):
    order(user, 1_000)
    browser = signed_in(user)
    leaderboard.board("month")  # cached with the user in it
    User.objects.filter(pk=user.pk).update(show_on_leaderboard=False)
    page = browser.get("/me/leaderboard/").content.decode()
    assert "is-me" not in page


def test_anonymous_is_sent_to_sign_in_and_the_switch_needs_post_and_csrf(user):
    for response in (Client().get("/me/leaderboard/"), Client().post("/me/leaderboard/visibility/", {"show": "0"})):
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert signed_in(user).get("/me/leaderboard/visibility/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post("/me/leaderboard/visibility/", {"show": "0"}).status_code == 403
    user.refresh_from_db()
    assert user.show_on_leaderboard is True


def test_the_page_costs_the_same_queries_with_many_buyers(user):
    browser = signed_in(user)
    order(user, 100)
    for n in range(3):
        order(buyer(f"b{n}@example.com"), 1000 + n)
    browser.get("/me/leaderboard/")  # computes and caches the board
    with CaptureQueriesContext(connection) as few:
        browser.get("/me/leaderboard/")
    for n in range(3, 120):
        order(buyer(f"b{n}@example.com"), 1000 + n)
    leaderboard.refresh_all()
    with CaptureQueriesContext(connection) as many:
        page = browser.get("/me/leaderboard/").content.decode()
    assert len(many) == len(few) <= 4  # session, user, the user's own spend
    assert page.count('class="board-row') == settings.LEADERBOARD_SIZE


def test_the_user_center_shows_the_top_three_and_my_place_from_the_cache(user):
    for n, spent in enumerate((9_000, 8_000, 7_000, 6_000)):
        order(buyer(f"rich{n}@example.com"), spent)
    order(user, 1_000)
    browser = signed_in(user)

    def card() -> str:
        page = browser.get("/me/").content.decode()
        return re.search(r'<section class="me-card" data-card="leaderboard">(.*?)</section>', page, re.S).group(1)

    cold = card()  # nothing computed yet: only the link, and no query for it
    assert 'href="/me/leaderboard/"' in cold and "me-podium" not in cold
    leaderboard.refresh_all()
    warm = text_of(card())
    assert "You are #5 ¥10.00" in warm
    assert "1 r***@example.com ¥90.00" in warm and "3 r***@example.com ¥70.00" in warm
    assert "¥60.00" not in warm  # the top three only


def test_a_payment_asks_for_one_recomputation_soon(user, django_capture_on_commit_callbacks):
    from unittest import mock

    from django.db import transaction

    from orders import services

    first = order(user, 1_000, status="pending_payment", paid_at=None)
    second = order(user, 2_000, status="pending_payment", paid_at=None)
    with mock.patch("orders.tasks.refresh_leaderboard.apply_async") as queued:
        for placed in (first, second):
            with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
                assert services.transition(placed, source=["pending_payment"], target="paid", kind="paid")
    assert queued.call_count == 1  # the second payment found one pending
    assert queued.call_args.kwargs == {"countdown": leaderboard.REFRESH_AFTER_CHANGE}


def test_the_board_moves_after_a_payment_without_waiting_for_the_beat(user, django_capture_on_commit_callbacks):
    from django.db import transaction

    from orders import services

    order(buyer("rich@example.com"), 5_000)
    assert [e.spent_fen for e in leaderboard.board("month").top] == [5_000]
    placed = order(user, 9_000, status="pending_payment", paid_at=None)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.transition(placed, source=["pending_payment"], target="paid", kind="paid", paid_at=timezone.now())
    assert [(e.user_id, e.spent_fen) for e in leaderboard.board("month").top] == [
        (user.pk, 9_000),
        (User.objects.get(email="rich@example.com").pk, 5_000),
    ]


def test_hiding_from_the_settings_page_takes_me_off_the_board_at_once(user, django_capture_on_commit_callbacks):
    """/me/settings/ has the same switch: the boards are recomputed after the commit, so another
    buyer no longer sees me listed."""
    order(user, 5_000)
    other = buyer("other@example.com", "旁观者")
    order(other, 100)
    leaderboard.board("month")
    assert user.pk in [entry.user_id for entry in leaderboard.cached(leaderboard.MONTH).top]
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(user).post("/me/settings/", {"notify_delivery_email": "on"})  # leaderboard box unticked
    assert response.status_code == 302
    assert user.pk not in [entry.user_id for entry in leaderboard.cached(leaderboard.MONTH).top]
    assert [entry.user_id for entry in leaderboard.cached(leaderboard.MONTH).top] == [other.pk]
