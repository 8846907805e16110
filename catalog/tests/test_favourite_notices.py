"""Price-drop and back-in-stock e-mails for favourites (catalog/favourites.py), through the paths
production uses: a price saved / stock changed → coalesced check queued on commit → one notice per
user → e-mail task, in the shopper's language, naming the shop, never sent twice."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone, translation

from accounts.models import User
from catalog import favourites, imports
from catalog.models import CardCode, Favourite, FavouriteNotice, Product, Sku
from catalog.signals import send_stock_changed

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run ``func`` in a transaction and then its on-commit work (signals, queued tasks)."""

    def run(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return func(*args, **kwargs)

    return run


@pytest.fixture(autouse=True)
def _private_upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"


def watch(user, slug: str, *, language: str = "en") -> Favourite:
    product = Product.objects.get(slug=slug)
    favourites.add(user=user, product_id=product.pk)
    favourites.set_notify(user=user, product_id=product.pk, notify=True, language=language)
    return Favourite.objects.get(user=user, product=product)


def cheapest(slug: str) -> Sku:
    return Sku.objects.filter(product__slug=slug, is_active=True).order_by("price_fen").first()


def reprice(sku: Sku, price_fen: int) -> None:
    """What the admin does: save the SKU with a new price."""
    sku.price_fen = price_fen
    sku.save()


def sold_out(slug: str) -> None:
    """Every code of the product withdrawn, announced as stock changes are."""
    ids = list(Sku.objects.filter(product__slug=slug).values_list("pk", flat=True))
    CardCode.objects.filter(sku_id__in=ids, status=CardCode.Status.AVAILABLE).update(
        status=CardCode.Status.VOID, voided_at=timezone.now()
    )
    send_stock_changed(sku_ids=ids)


def import_codes(sku: Sku, count: int, *, start: int = 0) -> None:
    """A real pasted-text import of ``count`` codes, checked and committed."""
    text = "\n".join(f"NOTICE-{sku.pk}-{n:07d}" for n in range(start, start + count))
    batch = imports.create_batch(product=sku.product, sku=sku, upload=None, filename="", text=text, enqueue=False)
    imports.parse_batch(batch_id=batch.pk)
    batch.refresh_from_db()
    assert imports.request_commit(batch=batch, enqueue=False)
    imports.commit_batch(batch_id=batch.pk)


def test_a_price_drop_sends_one_email_in_the_shoppers_language(user, demo_shop, on_commit):
    watch(user, "steam-wallet", language="en")
    sku = cheapest("steam-wallet")
    old = sku.price_fen
    on_commit(reprice, sku, old - 500)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [user.email]
    assert message.subject == "[Kameng] A favourite of yours is cheaper or back in stock"
    assert "Steam" in message.body
    assert f"now from ¥{(old - 500) / 100:.2f} (was ¥{old / 100:.2f})" in message.body
    assert "http://testserver/p/steam-wallet/" in message.body or "/p/steam-wallet/" in message.body
    assert "/me/favourites/" in message.body
    html = message.alternatives[0][0]
    assert "/p/steam-wallet/" in html

    # Saved again at the same price, or the check run again: nothing new to tell.
    on_commit(reprice, sku, old - 500)
    favourites.check_favourites(product_ids=[sku.product_id])
    assert len(mail.outbox) == 1
    assert FavouriteNotice.objects.count() == 1


def test_chinese_shoppers_get_chinese_email_naming_the_shop(user, demo_shop, on_commit):
    watch(user, "steam-wallet", language="zh-hans")
    sku = cheapest("steam-wallet")
    on_commit(reprice, sku, sku.price_fen - 100)
    (message,) = mail.outbox
    assert message.subject == "[卡盟] 您收藏的 1 件商品降价或到货了"
    assert "现价" in message.body and "卡盟" in message.body


def test_a_price_that_goes_up_and_comes_down_again_is_a_new_drop(user, demo_shop, on_commit):
    watch(user, "steam-wallet")
    sku = cheapest("steam-wallet")
    old = sku.price_fen
    on_commit(reprice, sku, old + 1000)
    assert mail.outbox == []
    on_commit(reprice, sku, old + 500)
    assert len(mail.outbox) == 1
    assert f"was ¥{(old + 1000) / 100:.2f}" in mail.outbox[0].body


def test_a_drop_on_a_sku_that_is_not_the_cheapest_is_not_news(user, demo_shop, on_commit):
    watch(user, "steam-wallet")
    dearest = Sku.objects.filter(product__slug="steam-wallet").order_by("-price_fen").first()
    on_commit(reprice, dearest, dearest.price_fen - 100)
    assert mail.outbox == []


def test_back_in_stock_after_a_big_import_sends_one_email(user, demo_shop, on_commit):
    watch(user, "steam-wallet")
    on_commit(sold_out, "steam-wallet")
    assert Favourite.objects.get(user=user).seen_in_stock is False
    assert mail.outbox == []

    sku = cheapest("steam-wallet")
    on_commit(import_codes, sku, 5000)
    assert CardCode.objects.filter(sku=sku, status=CardCode.Status.AVAILABLE).count() == 5000
    assert len(mail.outbox) == 1
    assert f"back in stock, from ¥{sku.price_fen / 100:.2f}" in mail.outbox[0].body

    # More codes, more saves: still in stock, nothing more.
    on_commit(import_codes, sku, 100, start=5000)
    on_commit(reprice, sku, sku.price_fen)
    assert len(mail.outbox) == 1


def test_changes_found_together_are_one_email_per_user(user, demo_shop, on_commit):
    other = User.objects.create_user(email="other@example.com", password="x-password-123")
    for who in (user, other):
        watch(who, "steam-wallet")
        watch(who, "qq-music-vip")
    # A bulk update sends no signal: the periodic sweep finds both drops in one check.
    Sku.objects.filter(product__slug__in=["steam-wallet", "qq-music-vip"]).update(price_fen=100)
    on_commit(favourites.sweep_favourites)
    assert sorted(message.to[0] for message in mail.outbox) == ["buyer@example.com", "other@example.com"]
    for message in mail.outbox:
        assert message.subject == "[Kameng] 2 of your favourites are cheaper or back in stock"
        assert "Steam" in message.body and "QQ" in message.body
    on_commit(favourites.sweep_favourites)
    assert len(mail.outbox) == 2


def test_no_email_without_opting_in_or_for_an_inactive_user(user, demo_shop, on_commit):
    steam = Product.objects.get(slug="steam-wallet")
    favourites.add(user=user, product_id=steam.pk)  # a favourite, notices off
    gone = User.objects.create_user(email="gone@example.com", password="x-password-123")
    watch(gone, "steam-wallet")
    User.objects.filter(pk=gone.pk).update(is_active=False)
    sku = cheapest("steam-wallet")
    on_commit(reprice, sku, sku.price_fen - 100)
    assert mail.outbox == []


def test_switching_notices_on_starts_from_what_the_shopper_sees_now(user, demo_shop, on_commit):
    steam = Product.objects.get(slug="steam-wallet")
    favourites.add(user=user, product_id=steam.pk)
    sku = cheapest("steam-wallet")
    on_commit(reprice, sku, sku.price_fen - 100)  # before opting in: not announced later either
    favourites.set_notify(user=user, product_id=steam.pk, notify=True)
    on_commit(favourites.sweep_favourites)
    assert mail.outbox == []


def test_checks_are_coalesced_per_sku(user, demo_shop, settings, django_capture_on_commit_callbacks):
    settings.FAVOURITE_CHECK_DELAY = 30
    sku = cheapest("steam-wallet")
    with mock.patch("catalog.tasks.check_favourites.apply_async") as queued:
        for price in (900, 800, 700):
            with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
                reprice(sku, price)
                send_stock_changed(sku_ids=[sku.pk])
    assert queued.call_count == 1
    assert queued.call_args.kwargs == {"kwargs": {"sku_ids": [sku.pk]}, "countdown": 30}
    # The task clears the mark before it checks: the next change queues a check of its own.
    favourites.check_skus(sku_ids=[sku.pk])
    with (
        mock.patch("catalog.tasks.check_favourites.apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True),
        transaction.atomic(),
    ):
        reprice(sku, 600)
    assert queued.call_count == 1


def test_a_notice_is_sent_once_and_a_lost_one_is_queued_again(user, demo_shop, on_commit):
    watch(user, "steam-wallet")
    Sku.objects.filter(product__slug="steam-wallet").update(price_fen=100)
    with mock.patch("catalog.tasks.send_favourite_notice.apply_async"):  # the broker lost it
        (notice_id,) = on_commit(favourites.check_favourites, product_ids=[Product.objects.get(slug="steam-wallet").pk])
    assert mail.outbox == []
    on_commit(favourites.sweep_favourites)  # too recent to be called lost
    assert mail.outbox == []
    FavouriteNotice.objects.filter(pk=notice_id).update(created_at=timezone.now() - datetime.timedelta(minutes=11))
    on_commit(favourites.sweep_favourites)
    assert len(mail.outbox) == 1
    assert favourites.send_notice(notice_id=notice_id) is False
    assert len(mail.outbox) == 1


def test_who_gets_notices_is_one_function(user, demo_shop):
    """The user-wide "price drops" preference will join wants_notices_q(); every path uses it."""
    watch(user, "steam-wallet")
    Sku.objects.filter(product__slug="steam-wallet").update(price_fen=100)
    with mock.patch.object(favourites, "wants_notices_q", return_value=favourites.Q(pk__in=[])):
        assert favourites.sweep_favourites() == []
        assert favourites.check_favourites(product_ids=Product.objects.values_list("pk", flat=True)) == []
    assert translation.get_language() is not None


def test_the_price_drops_setting_silences_every_favourite_and_a_favourites_switch_turns_it_on(
    user, demo_shop, on_commit
):
    """/me/settings/ has one "price drops" switch for all favourites: asking for a favourite's e-mails
    turns it on; turning it off there means no e-mail, whatever each favourite says."""
    assert user.notify_price_drops is False
    watch(user, "steam-wallet")
    user.refresh_from_db()
    assert user.notify_price_drops is True
    User.objects.filter(pk=user.pk).update(notify_price_drops=False)
    sku = cheapest("steam-wallet")
    on_commit(reprice, sku, sku.price_fen - 100)
    assert mail.outbox == []
