"""The merchant back office: scoping, masked codes, reveal, actions, stock counts, the low-stock badge."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Merchant, User
from accounts.roles import MERCHANT_STAFF, add_merchant_staff
from catalog import admin as catalog_admin
from catalog import codes, services
from catalog.demo import demo_code
from catalog.models import CardCode, Category, CodeAccess, Product, Sku, StockAlert

pytestmark = pytest.mark.django_db


def signed_in(client, user):
    client.force_login(user)
    client.cookies["django_language"] = "en"
    return client


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def sku_of(slug: str, label: str) -> Sku:
    return Sku.objects.select_related("product").get(product__slug=slug, label=label)


def action(client, model: str, name: str, ids) -> object:
    return client.post(
        url(f"catalog_{model}_changelist"), {"action": name, "_selected_action": [str(pk) for pk in ids]}, follow=True
    )


@pytest.fixture
def theirs(demo_shop):
    """One object of each kind belonging to the *other* merchant."""
    product = demo_shop.products["honor-of-kings"]
    sku = product.skus.get(label="60点券")
    code = sku.codes.order_by("pk").first()
    alert = StockAlert.objects.create(sku=sku, available_at_open=2, threshold=10)
    operator_user = User.objects.create_superuser(email="root@kameng.example")
    access = CodeAccess.objects.create(
        user=operator_user, kind="reveal", merchant=demo_shop.other_merchant, code=code, ip_address="127.0.0.1"
    )
    return {"product": product, "sku": sku, "cardcode": code, "stockalert": alert, "codeaccess": access}


# --- Scoping ------------------------------------------------------------------------------------
def test_merchant_staff_get_404_on_another_merchants_object_urls(client, merchant_staff, theirs):
    signed_in(client, merchant_staff)
    for model, obj in theirs.items():
        for view in ("change", "history", "delete"):
            response = client.get(url(f"catalog_{model}_{view}", obj.pk))
            assert response.status_code == 404, (model, view)
    assert client.post(url("catalog_cardcode_reveal", theirs["cardcode"].pk)).status_code == 404
    assert not CodeAccess.objects.filter(user=merchant_staff).exists()


def test_operators_open_any_merchants_objects(client, operator, theirs):
    signed_in(client, operator)
    for model, obj in theirs.items():
        assert client.get(url(f"catalog_{model}_change", obj.pk)).status_code == 200, model


def test_lists_show_only_own_objects(client, demo_shop, merchant_staff, theirs):
    StockAlert.objects.create(sku=sku_of("iqiyi-vip", "90天"), available_at_open=3, threshold=10)
    signed_in(client, merchant_staff)
    for model in ("product", "sku", "cardcode", "stockalert", "codeaccess"):
        response = client.get(url(f"catalog_{model}_changelist"))
        assert response.status_code == 200, model
        html = response.content.decode()
        assert "王者荣耀点券" not in html and "星辰游戏" not in html, model
    products = client.get(url("catalog_product_changelist")).content.decode()
    assert "Steam 钱包充值卡" in products
    assert "爱奇艺黄金会员 · 90天" in client.get(url("catalog_stockalert_changelist")).content.decode()
    # Filter by another merchant's SKU through the query string: nothing.
    assert (
        "0 card codes" in client.get(url("catalog_cardcode_changelist") + f"?sku={theirs['sku'].pk}").content.decode()
    )


def test_operator_lists_show_every_merchant(client, demo_shop, operator):
    signed_in(client, operator)
    html = client.get(url("catalog_product_changelist")).content.decode()
    assert "王者荣耀点券" in html and "Steam 钱包充值卡" in html
    html = client.get(url("catalog_sku_changelist")).content.decode()
    assert "王者荣耀点券 · 60点券" in html and "Steam 钱包充值卡 · 50元" in html


def test_form_choices_offer_only_own_products_and_merchant(client, demo_shop, merchant_staff):
    signed_in(client, merchant_staff)
    html = client.get(url("catalog_sku_add")).content.decode()
    assert "Steam 钱包充值卡" in html and "王者荣耀点券" not in html

    form = client.get(url("catalog_product_add")).context["adminform"].form
    merchant_field = form.fields["merchant"]
    assert list(merchant_field.queryset) == [demo_shop.merchant]
    assert merchant_field.disabled and merchant_field.initial == demo_shop.merchant.pk


def product_post(demo_shop, **overrides) -> dict:
    data = {
        "title": "新商品", "slug": "new-product", "category": demo_shop.categories["game-cards"].pk,
        "delivery_mode": "automatic", "min_per_order": 1, "max_per_order": 10, "sort_order": 0,
        "summary": "", "description": "", "title_en": "",
    }  # fmt: skip
    for prefix in ("skus", "images", "buyer_fields"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    data.update({"skus-TOTAL_FORMS": 1, "skus-0-label": "10元", "skus-0-price_fen": 990, "skus-0-face_value_fen": 1000,
                 "skus-0-is_active": "on", "skus-0-low_stock_threshold": 5, "skus-0-sort_order": 0})  # fmt: skip
    data.update(overrides)
    return data


def test_merchant_staff_add_products_to_their_own_merchant_whatever_they_post(client, demo_shop, merchant_staff):
    signed_in(client, merchant_staff)
    response = client.post(url("catalog_product_add"), product_post(demo_shop, merchant=demo_shop.other_merchant.pk))
    assert response.status_code == 302, response.content.decode()[:2000]
    product = Product.objects.get(slug="new-product")
    assert product.merchant == demo_shop.merchant
    assert product.status == Product.Status.DRAFT
    assert product.skus.get().low_stock_threshold == 5


def test_staff_of_several_merchants_choose_among_theirs_only(client, demo_shop, merchant_staff):
    third = Merchant.objects.create(name="第三商户", slug="third")
    add_merchant_staff(merchant=third, user=merchant_staff)
    signed_in(client, merchant_staff)
    form = client.get(url("catalog_product_add")).context["adminform"].form
    assert set(form.fields["merchant"].queryset) == {demo_shop.merchant, third}
    assert not form.fields["merchant"].disabled

    response = client.post(url("catalog_product_add"), product_post(demo_shop, merchant=demo_shop.other_merchant.pk))
    assert response.status_code == 200  # invalid choice
    assert not Product.objects.filter(slug="new-product").exists()
    response = client.post(url("catalog_product_add"), product_post(demo_shop, merchant=third.pk))
    assert response.status_code == 302
    assert Product.objects.get(slug="new-product").merchant == third


def test_categories_are_managed_by_operators_and_visible_to_merchant_staff(client, demo_shop, merchant_staff, operator):
    signed_in(client, merchant_staff)
    assert client.get(url("catalog_category_changelist")).status_code == 200
    assert client.get(url("catalog_category_add")).status_code == 403
    category = Category.objects.get(slug="software")
    client.post(url("catalog_category_change", category.pk), {"name": "改名", "slug": "software", "sort_order": 0})
    assert Category.objects.get(pk=category.pk).name == "软件激活码"

    signed_in(client, operator)
    assert client.get(url("catalog_category_add")).status_code == 200


# --- Actions ------------------------------------------------------------------------------------
def test_list_and_delist_actions_follow_the_transitions_and_the_scope(client, demo_shop, merchant_staff):
    mine = demo_shop.products["steam-wallet"]
    draft = demo_shop.products["iqiyi-vip"]
    Product.objects.filter(pk=draft.pk).update(status=Product.Status.DRAFT)
    other = demo_shop.products["honor-of-kings"]
    signed_in(client, merchant_staff)

    response = action(client, "product", "delist_products", [mine.pk, draft.pk, other.pk])
    assert response.status_code == 200
    statuses = dict(Product.objects.filter(pk__in=[mine.pk, draft.pk, other.pk]).values_list("slug", "status"))
    assert statuses == {"steam-wallet": "delisted", "iqiyi-vip": "draft", "honor-of-kings": "listed"}
    assert "1 product delisted." in response.content.decode()

    action(client, "product", "list_products", [mine.pk, draft.pk])
    statuses = dict(Product.objects.filter(pk__in=[mine.pk, draft.pk]).values_list("slug", "status"))
    assert statuses == {"steam-wallet": "listed", "iqiyi-vip": "listed"}


def test_actions_with_another_merchants_ids_change_nothing(client, demo_shop, merchant_staff, theirs):
    signed_in(client, merchant_staff)
    action(client, "product", "delist_products", [theirs["product"].pk])
    assert Product.objects.get(pk=theirs["product"].pk).status == "listed"
    codes_of_theirs = list(theirs["sku"].codes.values_list("pk", flat=True))
    action(client, "cardcode", "void_selected", codes_of_theirs)
    assert not CardCode.objects.filter(pk__in=codes_of_theirs, status="void").exists()


def test_void_action_voids_only_available_codes(client, demo_shop, merchant_staff):
    sku = sku_of("steam-wallet", "100元")
    available, reserved, sold = sku.codes.order_by("pk")[:3]
    now = timezone.now()
    CardCode.objects.filter(pk=reserved.pk).update(
        status="reserved", reserved_until=now + datetime.timedelta(minutes=9)
    )
    CardCode.objects.filter(pk=sold.pk).update(status="sold", sold_at=now, times_sold=1)
    signed_in(client, merchant_staff)
    html = action(client, "cardcode", "void_selected", [available.pk, reserved.pk, sold.pk]).content.decode()
    assert "1 code voided." in html
    assert "2 codes were not available" in html
    assert list(CardCode.objects.filter(pk__in=[available.pk, reserved.pk, sold.pk]).order_by("pk").values_list(
        "status", flat=True)) == ["void", "reserved", "sold"]  # fmt: skip


# --- Codes: masked, read-only, revealed on purpose ---------------------------------------------
def test_code_list_and_page_show_the_mask_never_the_code(client, demo_shop, merchant_staff):
    sku = sku_of("steam-wallet", "50元")
    signed_in(client, merchant_staff)
    html = client.get(url("catalog_cardcode_changelist") + f"?sku={sku.pk}").content.decode()
    first = sku.codes.order_by("pk").first()
    assert first.hint in html
    for n in range(30):
        secret = demo_code(sku, n)
        assert secret.code not in html and secret.password not in html
    assert first.payload not in html

    page = client.get(url("catalog_cardcode_change", first.pk)).content.decode()
    assert first.hint in page
    assert demo_code(sku, 0).code not in page and first.payload not in page
    assert 'name="_save"' not in page  # read-only
    assert 'id="reveal-code"' in page


def test_codes_cannot_be_added_or_deleted_in_admin(client, demo_shop, merchant_staff, operator):
    code = sku_of("steam-wallet", "50元").codes.first()
    for user in (merchant_staff, operator):
        signed_in(client, user)
        assert client.get(url("catalog_cardcode_add")).status_code == 403
        assert client.post(url("catalog_cardcode_delete", code.pk), {"post": "yes"}).status_code == 403
    assert CardCode.objects.filter(pk=code.pk).exists()


def test_reveal_requires_the_permission(client, demo_shop, merchant_staff):
    group = Group.objects.get(name=MERCHANT_STAFF)
    group.permissions.remove(Permission.objects.get(codename="reveal_cardcode"))
    code = sku_of("steam-wallet", "50元").codes.order_by("pk").first()
    signed_in(client, merchant_staff)
    assert 'id="reveal-code"' not in client.get(url("catalog_cardcode_change", code.pk)).content.decode()
    response = client.post(url("catalog_cardcode_reveal", code.pk))
    assert response.status_code == 403
    assert demo_code(code.sku, 0).code not in response.content.decode()
    assert not CodeAccess.objects.exists()


def test_reveal_shows_the_code_once_and_records_it(client, demo_shop, merchant_staff):
    sku = sku_of("steam-wallet", "50元")
    code = sku.codes.order_by("pk").first()
    signed_in(client, merchant_staff)
    assert client.get(url("catalog_cardcode_reveal", code.pk)).status_code == 405  # never by a link

    response = client.post(url("catalog_cardcode_reveal", code.pk), REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200
    html = response.content.decode()
    secret = demo_code(sku, 0)
    assert secret.code in html and secret.password in html
    cache_control = response["Cache-Control"]
    assert "no-store" in cache_control and "private" in cache_control
    access = CodeAccess.objects.get()
    assert (access.user, access.kind, access.merchant, access.code, access.code_count, access.ip_address) == (
        merchant_staff, "reveal", demo_shop.merchant, code, 1, "203.0.113.7",
    )  # fmt: skip

    # The access log shows it to the merchant, masked.
    log = client.get(url("catalog_codeaccess_changelist")).content.decode()
    assert code.hint in log and secret.code not in log


def test_reveals_are_rate_limited_per_user(client, demo_shop, merchant_staff, monkeypatch):
    monkeypatch.setattr(catalog_admin, "REVEAL_RATE", "2/h")
    code_ids = list(sku_of("steam-wallet", "50元").codes.order_by("pk").values_list("pk", flat=True)[:3])
    signed_in(client, merchant_staff)
    statuses = [client.post(url("catalog_cardcode_reveal", pk)).status_code for pk in code_ids]
    assert statuses == [200, 200, 429]
    assert CodeAccess.objects.count() == 2


def test_code_access_log_is_scoped_and_read_only(client, demo_shop, merchant_staff, operator, theirs):
    signed_in(client, merchant_staff)
    assert client.get(url("catalog_codeaccess_changelist")).status_code == 200
    assert client.get(url("catalog_codeaccess_add")).status_code == 403
    signed_in(client, operator)
    html = client.get(url("catalog_codeaccess_changelist")).content.decode()
    assert "星辰游戏" in html
    assert client.get(url("catalog_codeaccess_add")).status_code == 403


# --- SKU list: counts in constant queries, low-stock badges -------------------------------------
def add_skus(merchant: Merchant, count: int, *, start: int = 0) -> None:
    category, _ = Category.objects.get_or_create(slug="game-cards", defaults={"name": "游戏点卡"})
    product, _ = Product.objects.get_or_create(
        slug=f"bulk-{merchant.slug}", defaults={"merchant": merchant, "category": category, "title": "批量商品",
                                                 "status": Product.Status.LISTED},
    )  # fmt: skip
    for n in range(start, start + count):
        sku = Sku.objects.create(product=product, label=f"{n}元", price_fen=100 + n)
        services.add_codes(sku=sku, secrets=[codes.Secret(code=f"BULK-{n}-{i}") for i in range(3)])
        first = sku.codes.order_by("pk").first()
        CardCode.objects.filter(pk=first.pk).update(status="sold", sold_at=timezone.now(), times_sold=1)


def sku_list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url("catalog_sku_changelist"))
        assert response.status_code == 200
    return len(queries)


def test_sku_list_query_count_does_not_grow_with_the_skus(client, db, operator):
    merchant = Merchant.objects.create(name="批量商户", slug="bulk")
    staff = User.objects.create_user(email="bulk@merchant.example")
    add_merchant_staff(merchant=merchant, user=staff)
    add_skus(merchant, 1)
    StockAlert.objects.create(sku=Sku.objects.get(label="0元"), available_at_open=2, threshold=10)
    for user in (staff, operator):
        signed_in(client, user)
        one = sku_list_queries(client)
        assert one <= 15
        if user is staff:
            add_skus(merchant, 29, start=1)
        assert sku_list_queries(client) == one, user

    html = client.get(url("catalog_sku_changelist")).content.decode()
    assert html.count('<td class="field-available">2</td>') == 30
    assert html.count('<td class="field-sold">1</td>') == 30
    assert html.count("kameng-badge-low") == 1


def test_sku_list_counts_available_reserved_and_sold(client, demo_shop, merchant_staff):
    sku = sku_of("steam-wallet", "200元")
    ids = list(sku.codes.order_by("pk").values_list("pk", flat=True))
    now = timezone.now()
    CardCode.objects.filter(pk__in=ids[:4]).update(
        status="reserved", reserved_until=now + datetime.timedelta(minutes=5)
    )
    CardCode.objects.filter(pk__in=ids[4:6]).update(
        status="reserved", reserved_until=now - datetime.timedelta(minutes=5)
    )
    CardCode.objects.filter(pk__in=ids[6:13]).update(status="sold", sold_at=now, times_sold=1)
    signed_in(client, merchant_staff)
    response = client.get(url("catalog_sku_changelist") + f"?q=200元&product__id__exact={sku.product_id}")
    row = next(obj for obj in response.context["cl"].result_list if obj.pk == sku.pk)
    # 17 available + 2 whose hold passed are for sale; 4 held; 7 sold.
    assert (row.available_count, row.reserved_count, row.sold_count) == (19, 4, 7)


def test_low_stock_badge_in_admin_for_the_users_scope(client, demo_shop, merchant_staff, other_merchant_staff):
    StockAlert.objects.create(sku=sku_of("iqiyi-vip", "90天"), available_at_open=3, threshold=10)
    StockAlert.objects.create(sku=sku_of("office-key", "永久授权"), available_at_open=0, threshold=10)
    closed = StockAlert.objects.create(sku=sku_of("steam-wallet", "50元"), available_at_open=9, threshold=10)
    StockAlert.objects.filter(pk=closed.pk).update(closed_at=timezone.now())

    signed_in(client, merchant_staff)
    html = client.get(url("index")).content.decode()
    assert 'id="low-stock-badge"' in html and "2 SKUs low on stock" in html
    html = client.get(url("catalog_sku_changelist") + "?low_stock=open").content.decode()
    assert html.count("kameng-badge-low") == 2

    signed_in(client, other_merchant_staff)
    assert 'id="low-stock-badge"' not in client.get(url("index")).content.decode()


def test_alerts_are_read_only(client, demo_shop, merchant_staff, operator):
    alert = StockAlert.objects.create(sku=sku_of("iqiyi-vip", "90天"), available_at_open=3, threshold=10)
    for user in (merchant_staff, operator):
        signed_in(client, user)
        assert client.get(url("catalog_stockalert_add")).status_code == 403
        page = client.get(url("catalog_stockalert_change", alert.pk))
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


def test_changing_a_threshold_in_admin_reevaluates_the_alert(
    client, demo_shop, merchant_staff, django_capture_on_commit_callbacks
):
    sku = sku_of("steam-wallet", "50元")  # 30 codes
    signed_in(client, merchant_staff)
    data = {"product": sku.product_id, "label": sku.label, "face_value_fen": sku.face_value_fen,
            "price_fen": sku.price_fen, "is_active": "on", "low_stock_threshold": 40, "sort_order": 0}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url("catalog_sku_change", sku.pk), data).status_code == 302
    assert StockAlert.objects.filter(sku=sku, closed_at__isnull=True, available_at_open=30).exists()


def test_reusable_flag_is_fixed_once_a_sku_has_codes(client, demo_shop, merchant_staff):
    sku = sku_of("steam-wallet", "50元")
    signed_in(client, merchant_staff)
    data = {"product": sku.product_id, "label": sku.label, "face_value_fen": sku.face_value_fen,
            "price_fen": sku.price_fen, "is_active": "on", "low_stock_threshold": 10, "sort_order": 0,
            "reusable_code": "on"}  # fmt: skip
    assert client.post(url("catalog_sku_change", sku.pk), data).status_code == 200
    assert Sku.objects.get(pk=sku.pk).reusable_code is False
