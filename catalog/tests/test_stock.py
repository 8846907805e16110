"""Low-stock alerts, voiding and listing: catalog/stock.py, through the same paths production uses
(stock_changed on commit → receiver → Celery task → service → e-mail task)."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.utils import timezone

from catalog import codes, services, stock
from catalog.models import CardCode, Product, Sku, StockAlert
from catalog.signals import send_stock_changed

pytestmark = pytest.mark.django_db

OPS = "ops@kameng.example"


@pytest.fixture(autouse=True)
def _operator_list(settings):
    settings.OPERATOR_EMAILS = [OPS]


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit work (signals, queued tasks) as a real commit would."""

    def run(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return func(*args, **kwargs)

    return run


def sku_of(slug: str, label: str) -> Sku:
    return Sku.objects.select_related("product__merchant").get(product__slug=slug, label=label)


def sell(sku: Sku, n: int, *, when: datetime.datetime | None = None) -> None:
    """What delivery will do: mark n for-sale codes sold and announce it on commit."""
    ids = list(
        CardCode.objects.filter(sku=sku, status=CardCode.Status.AVAILABLE)
        .order_by("pk")[:n]
        .values_list("pk", flat=True)
    )
    assert len(ids) == n
    CardCode.objects.filter(pk__in=ids).update(
        status=CardCode.Status.SOLD, sold_at=when or timezone.now(), times_sold=1
    )
    send_stock_changed(sku_ids=[sku.pk])


def restock(sku: Sku, n: int, *, start: int = 1000) -> None:
    services.add_codes(sku=sku, secrets=[codes.Secret(code=f"RESTOCK-{sku.pk}-{start + i:06d}") for i in range(n)])


def open_alerts(sku: Sku):
    return StockAlert.objects.filter(sku=sku, closed_at__isnull=True)


def for_sale(sku: Sku) -> int:
    return CardCode.objects.filter(sku=sku).for_sale(now=timezone.now()).count()


def test_one_alert_per_episode_one_email_and_rearm_after_restock(demo_shop, merchant_staff, on_commit):
    sku = sku_of("steam-wallet", "50元")  # 30 codes, threshold 10
    assert sku.low_stock_threshold == 10 and for_sale(sku) == 30

    on_commit(sell, sku, 19)  # 11 left: above the threshold
    assert not StockAlert.objects.filter(sku=sku).exists()
    assert mail.outbox == []

    on_commit(sell, sku, 1)  # 10 left: at the threshold → low
    alert = open_alerts(sku).get()
    assert (alert.available_at_open, alert.threshold) == (10, 10)
    assert alert.notified_at is not None
    assert sorted(m.to[0] for m in mail.outbox) == sorted([merchant_staff.email, OPS])  # one each, no shared To
    message = mail.outbox[0]
    assert "Steam 钱包充值卡" in message.subject and "50元" in message.subject and "10" in message.subject
    assert f"/admin/catalog/sku/{sku.pk}/change/" in message.body
    html = message.alternatives[0][0]
    assert message.alternatives[0][1] == "text/html" and "Steam 钱包充值卡" in html

    for _ in range(3):  # more sales in the same episode
        on_commit(sell, sku, 2)
    assert StockAlert.objects.filter(sku=sku).count() == 1
    assert len(mail.outbox) == 2

    on_commit(restock, sku, 8)  # 4 + 8 = 12 > 10: the episode ends, the alert re-arms
    alert.refresh_from_db()
    assert alert.closed_at is not None
    assert not open_alerts(sku).exists()

    on_commit(sell, sku, 1)  # 11: still above
    assert StockAlert.objects.filter(sku=sku).count() == 1

    on_commit(sell, sku, 2)  # 9: next dip, a new episode
    assert StockAlert.objects.filter(sku=sku).count() == 2
    assert open_alerts(sku).get().available_at_open == 9
    assert len(mail.outbox) == 4


def test_voiding_codes_can_open_an_alert(demo_shop, merchant_staff, on_commit):
    sku = sku_of("netease-points", "30元")
    ids = list(CardCode.objects.filter(sku=sku).order_by("pk").values_list("pk", flat=True)[:20])
    assert on_commit(stock.void_codes, code_ids=ids, user=merchant_staff) == 20
    assert open_alerts(sku).get().available_at_open == 10


def test_void_only_touches_available_codes_in_scope(demo_shop, merchant_staff, other_merchant_staff, on_commit):
    sku = sku_of("steam-wallet", "100元")
    first, second, third, fourth, *_ = CardCode.objects.filter(sku=sku).order_by("pk")
    now = timezone.now()
    CardCode.objects.filter(pk=second.pk).update(
        status=CardCode.Status.RESERVED, reserved_until=now + datetime.timedelta(minutes=5)
    )
    CardCode.objects.filter(pk=third.pk).update(status=CardCode.Status.SOLD, sold_at=now, times_sold=1)
    ids = [first.pk, second.pk, third.pk, fourth.pk]

    # Another merchant's staff: nothing in scope, nothing changes.
    assert on_commit(stock.void_codes, code_ids=ids, user=other_merchant_staff) == 0
    assert CardCode.objects.filter(pk__in=ids, status=CardCode.Status.VOID).count() == 0

    assert on_commit(stock.void_codes, code_ids=ids, user=merchant_staff) == 2
    statuses = dict(CardCode.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == {first.pk: "void", second.pk: "reserved", third.pk: "sold", fourth.pk: "void"}
    assert CardCode.objects.get(pk=first.pk).voided_at is not None
    assert on_commit(stock.void_codes, code_ids=ids, user=merchant_staff) == 0  # idempotent


def test_reusable_code_sku_is_low_only_without_any_code(demo_shop, on_commit):
    sku = sku_of("python-course", "标准版")
    Sku.objects.filter(pk=sku.pk).update(reusable_code=True, low_stock_threshold=10)
    CardCode.objects.filter(sku=sku).delete()
    services.add_codes(sku=Sku.objects.get(pk=sku.pk), secrets=[codes.Secret(code="SHARED-COURSE-CODE")])
    assert stock.check_low_stock(sku_ids=[sku.pk]).opened == []  # 1 code ≤ 10, but reusable: fine

    on_commit(lambda: CardCode.objects.filter(sku=sku).update(status=CardCode.Status.VOID, voided_at=timezone.now()))
    assert len(stock.check_low_stock(sku_ids=[sku.pk]).opened) == 1


def test_skus_not_on_sale_do_not_alert_and_delisting_ends_the_episode(demo_shop, merchant_staff, on_commit):
    sku = sku_of("iqiyi-vip", "90天")  # seeded with 3 codes: low
    office = sku_of("office-key", "永久授权")  # seeded with none
    manual = sku_of("python-course", "进阶版")
    Product.objects.filter(pk=manual.product_id).update(delivery_mode=Product.DeliveryMode.MANUAL)
    CardCode.objects.filter(sku=manual).delete()

    Sku.objects.filter(pk=office.pk).update(is_active=False)
    result = stock.check_low_stock(sku_ids=[sku.pk, office.pk, manual.pk])
    assert [StockAlert.objects.get(pk=pk).sku_id for pk in result.opened] == [sku.pk]

    on_commit(
        stock.set_product_status, product_ids=[sku.product_id], status=Product.Status.DELISTED, user=merchant_staff
    )
    assert not open_alerts(sku).exists()  # not on sale: no alert
    on_commit(stock.set_product_status, product_ids=[sku.product_id], status=Product.Status.LISTED, user=merchant_staff)
    assert open_alerts(sku).exists()  # listed again while low: a new episode
    assert StockAlert.objects.filter(sku=sku).count() == 2


def test_suspended_merchant_does_not_alert(demo_shop):
    sku = sku_of("iqiyi-vip", "90天")
    demo_shop.merchant.status = "suspended"
    demo_shop.merchant.save()
    assert stock.check_low_stock(sku_ids=[sku.pk]).opened == []


def test_product_status_transitions(demo_shop, merchant_staff, other_merchant_staff):
    product = demo_shop.products["steam-wallet"]
    Product.objects.filter(pk=product.pk).update(status=Product.Status.DRAFT)

    def status():
        return Product.objects.get(pk=product.pk).status

    assert stock.set_product_status(product_ids=[product.pk], status="delisted", user=merchant_staff) == 0
    assert status() == "draft"  # draft → delisted is not a transition
    assert stock.set_product_status(product_ids=[product.pk], status="listed", user=other_merchant_staff) == 0
    assert status() == "draft"  # not theirs
    assert stock.set_product_status(product_ids=[product.pk], status="listed", user=merchant_staff) == 1
    assert stock.set_product_status(product_ids=[product.pk], status="listed", user=merchant_staff) == 0
    assert stock.set_product_status(product_ids=[product.pk], status="delisted", user=merchant_staff) == 1
    assert stock.set_product_status(product_ids=[product.pk], status="listed", user=merchant_staff) == 1
    assert status() == "listed"
    with pytest.raises(ValueError, match="draft"):
        stock.set_product_status(product_ids=[product.pk], status="draft", user=merchant_staff)


def test_expired_reservations_count_as_for_sale_and_the_sweep_catches_them(demo_shop, merchant_staff, on_commit):
    sku = sku_of("steam-wallet", "200元")
    now = timezone.now()
    held = list(CardCode.objects.filter(sku=sku).order_by("pk").values_list("pk", flat=True)[:25])
    CardCode.objects.filter(pk__in=held).update(
        status=CardCode.Status.RESERVED, reserved_until=now + datetime.timedelta(minutes=15)
    )
    on_commit(send_stock_changed, sku_ids=[sku.pk])
    assert open_alerts(sku).get().available_at_open == 5

    # The checkout hold passes; nobody releases the codes explicitly, so no signal is sent.
    CardCode.objects.filter(pk__in=held).update(reserved_until=now - datetime.timedelta(minutes=1))
    assert for_sale(sku) == 30
    result = on_commit(stock.sweep_low_stock)
    assert result.closed == 1
    # (the sweep also opened the alerts of the SKUs seeded low, which no commit had evaluated yet)
    assert sku.pk not in StockAlert.objects.filter(pk__in=result.opened).values_list("sku_id", flat=True)
    assert not open_alerts(sku).exists()


def test_sweep_opens_missing_alerts_and_requeues_lost_emails(demo_shop, merchant_staff, on_commit):
    iqiyi = sku_of("iqiyi-vip", "90天")  # 3 codes, threshold 10, no alert yet (no commit ran)
    office = sku_of("office-key", "永久授权")
    # An alert whose e-mail never left (broker down when it opened).
    lost = StockAlert.objects.create(sku=office, available_at_open=0, threshold=10)
    StockAlert.objects.filter(pk=lost.pk).update(opened_at=timezone.now() - datetime.timedelta(hours=1))

    result = on_commit(stock.sweep_low_stock)
    assert [StockAlert.objects.get(pk=pk).sku_id for pk in result.opened] == [iqiyi.pk]
    lost.refresh_from_db()
    assert lost.notified_at is not None
    subjects = [m.subject for m in mail.outbox]
    assert sum("90天" in s for s in subjects) == 2 and sum("永久授权" in s for s in subjects) == 2

    mail.outbox.clear()
    result = on_commit(stock.sweep_low_stock)  # nothing left to do
    assert (result.opened, result.closed, mail.outbox) == ([], 0, [])


def test_notification_is_sent_at_most_once_and_not_after_restock(demo_shop, merchant_staff):
    sku = sku_of("iqiyi-vip", "90天")
    alert = StockAlert.objects.create(sku=sku, available_at_open=3, threshold=10)
    assert stock.notify_stock_alert(alert_id=alert.pk) is True
    assert stock.notify_stock_alert(alert_id=alert.pk) is False
    assert len(mail.outbox) == 2

    closed = StockAlert.objects.create(sku=sku_of("office-key", "永久授权"), available_at_open=0, threshold=10)
    StockAlert.objects.filter(pk=closed.pk).update(closed_at=timezone.now())
    assert stock.notify_stock_alert(alert_id=closed.pk) is False
    assert len(mail.outbox) == 2


def test_alert_email_goes_only_to_active_staff_of_the_merchant(
    demo_shop, merchant_staff, other_merchant_staff, settings
):
    from accounts.models import User
    from accounts.roles import add_merchant_staff

    settings.OPERATOR_EMAILS = []
    gone = User.objects.create_user(email="left@merchant.example")
    add_merchant_staff(merchant=demo_shop.merchant, user=gone)
    User.objects.filter(pk=gone.pk).update(is_active=False)
    alert = StockAlert.objects.create(sku=sku_of("iqiyi-vip", "90天"), available_at_open=3, threshold=10)
    stock.notify_stock_alert(alert_id=alert.pk)
    assert [m.to for m in mail.outbox] == [[merchant_staff.email]]


def test_the_signal_receiver_queues_the_celery_task(demo_shop, on_commit):
    """stock_changed → catalog.tasks.check_low_stock (eager Celery) → alert."""
    sku = sku_of("qq-music-vip", "1个月")
    on_commit(sell, sku, 25)
    assert open_alerts(sku).get().available_at_open == 5


# --- Digest -------------------------------------------------------------------------------------
def test_days_of_cover():
    def line(available, sold):
        return stock.DigestLine(
            sku_id=1, merchant_id=1, merchant_name="m", product_title="p", sku_label="s", available=available,
            threshold=10, reusable=False, sold_7d=sold,
        )  # fmt: skip

    assert line(5, 14).days_of_cover == "2.5"  # 5 / (14 / 7)
    assert line(10, 3).days_of_cover == "23.3"  # 23.33…
    assert line(1, 6).days_of_cover == "1.2"  # 1.1666… rounds half up at one decimal
    assert line(1, 28).days_of_cover == "0.3"  # 0.25 → 0.3
    assert line(0, 4).days_of_cover == "0.0"
    assert line(3, 0).days_of_cover == "∞"
    assert line(0, 0).days_of_cover == "—"


def test_daily_digest_lists_low_skus_with_sales_and_days_of_cover(
    demo_shop, merchant_staff, other_merchant_staff, settings, django_assert_max_num_queries
):
    now = timezone.now()
    steam = sku_of("steam-wallet", "50元")
    sell(steam, 25, when=now - datetime.timedelta(days=2))  # 14 of these in the window…
    old = list(CardCode.objects.filter(sku=steam, status="sold").order_by("pk").values_list("pk", flat=True)[:11])
    CardCode.objects.filter(pk__in=old).update(sold_at=now - datetime.timedelta(days=8))  # …11 outside it
    # steam 50元: 5 left, 14 sold in 7 days → 2.5 days of cover
    honor = sku_of("honor-of-kings", "60点券")  # the other merchant's
    sell(honor, 28)  # 2 left, 28 sold → 0.5
    # iqiyi 90天: 3 left, no sales → ∞; office-key: nothing, never sold → —

    with django_assert_max_num_queries(12):
        report = stock.low_stock_report(now=now)
    mine = {line.sku_label: line for line in report[demo_shop.merchant.pk]}
    assert set(mine) == {"50元", "90天", "永久授权"}
    assert (mine["50元"].available, mine["50元"].sold_7d, mine["50元"].days_of_cover) == (5, 14, "2.5")
    assert (mine["90天"].available, mine["90天"].days_of_cover) == (3, "∞")
    assert (mine["永久授权"].available, mine["永久授权"].days_of_cover) == (0, "—")
    assert [line.days_of_cover for line in report[demo_shop.other_merchant.pk]] == ["0.5"]

    assert stock.send_low_stock_digest(now=now) == 3  # one per merchant's staff, one for operators
    by_recipient = {m.to[0]: m for m in mail.outbox}
    staff_mail = by_recipient[merchant_staff.email]
    assert "2.5" in staff_mail.body and "∞" in staff_mail.body and "—" in staff_mail.body
    assert "Steam 钱包充值卡 · 50元" in staff_mail.body
    assert "王者荣耀点券" not in staff_mail.body  # another merchant's goods
    assert "0.5" in by_recipient[other_merchant_staff.email].body
    assert "Steam 钱包充值卡" not in by_recipient[other_merchant_staff.email].body
    ops_mail = by_recipient[OPS]
    assert "王者荣耀点券" in ops_mail.body and "Steam 钱包充值卡" in ops_mail.body
    assert "<td" in ops_mail.alternatives[0][0] and "2.5" in ops_mail.alternatives[0][0]

    assert stock.send_low_stock_digest(now=now) == 0  # the same day again: nothing new
    assert len(mail.outbox) == 3


def test_reusable_code_sales_count_times_sold_in_the_digest(demo_shop):
    now = timezone.now()
    sku = sku_of("python-course", "标准版")
    Sku.objects.filter(pk=sku.pk).update(reusable_code=True)
    CardCode.objects.filter(sku=sku).delete()
    services.add_codes(sku=Sku.objects.get(pk=sku.pk), secrets=[codes.Secret(code="SHARED-1")])
    CardCode.objects.filter(sku=sku).update(times_sold=9, sold_at=now - datetime.timedelta(days=1))
    assert stock.sold_in_window(sku_ids=[sku.pk], since=now - datetime.timedelta(days=7)) == {sku.pk: 9}


def test_periodic_tasks_are_scheduled_with_expiry_and_registered():
    from kameng.celery import app

    entries = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in ("catalog.tasks.sweep_low_stock", "catalog.tasks.send_low_stock_digest"):
        assert name in app.tasks
        assert entries[name]["options"]["expires"] > 0


def test_periodic_tasks_skip_while_another_run_holds_the_lock(demo_shop):
    from django.core.cache import cache

    from catalog import tasks

    cache.add("exclusive:catalog.tasks.sweep_low_stock", "someone-else", 60)
    assert tasks.sweep_low_stock.apply().get() is None
    assert not StockAlert.objects.exists()
    cache.delete("exclusive:catalog.tasks.sweep_low_stock")
    assert tasks.sweep_low_stock.apply().get() == 2  # iqiyi 90天 and office-key
