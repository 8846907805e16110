"""Stock and sales exports (.xlsx): masked by default, full only on purpose and recorded, scoped."""

from __future__ import annotations

import datetime
import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from accounts.roles import MERCHANT_STAFF
from catalog import codes, exports, services
from catalog.demo import demo_code
from catalog.models import CardCode, CodeAccess, Sku

pytestmark = pytest.mark.django_db

SKU_CHANGELIST = "/admin/catalog/sku/"


def signed_in(client, user):
    client.force_login(user)
    client.cookies["django_language"] = "en"
    return client


def sku_of(slug: str, label: str) -> Sku:
    return Sku.objects.select_related("product").get(product__slug=slug, label=label)


def rows_of(content: bytes) -> list[tuple]:
    sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


def download(response) -> bytes:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == exports.XLSX_CONTENT_TYPE
    assert "attachment" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    return b"".join(response.streaming_content)


def export_stock(client, sku_ids, *, codes_choice="masked", scope="in_stock", **extra):
    data = {"ids": [str(pk) for pk in sku_ids], "codes": codes_choice, "scope": scope}
    return client.post(reverse("admin:catalog_sku_export_stock"), data, **extra)


def test_the_export_action_asks_before_exporting(client, demo_shop, merchant_staff):
    sku = sku_of("steam-wallet", "50元")
    signed_in(client, merchant_staff)
    response = client.post(SKU_CHANGELIST, {"action": "export_stock", "_selected_action": [sku.pk]})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="full"' in html and reverse("admin:catalog_sku_export_stock") in html

    Group.objects.get(name=MERCHANT_STAFF).permissions.remove(Permission.objects.get(codename="reveal_cardcode"))
    html = client.post(SKU_CHANGELIST, {"action": "export_stock", "_selected_action": [sku.pk]}).content.decode()
    assert 'value="full"' not in html and 'value="masked"' in html


def test_masked_stock_export_has_masks_only(client, demo_shop, merchant_staff):
    sku = sku_of("steam-wallet", "50元")
    CardCode.objects.filter(pk=sku.codes.order_by("pk").first().pk).update(status="sold", sold_at=timezone.now())
    signed_in(client, merchant_staff)
    content = download(export_stock(client, [sku.pk]))
    rows = rows_of(content)
    header, body = rows[0], rows[1:]
    assert "Code (masked)" in header and "Password" not in header
    assert len(body) == 29  # in stock only: the sold one is left out
    hints = set(sku.codes.exclude(status="sold").values_list("hint", flat=True))
    assert {row[3] for row in body} == hints
    assert {row[2] for row in body} == {"50元"}
    for n in range(30):
        assert demo_code(sku, n).code.encode() not in content
    assert not CodeAccess.objects.exists()

    everything = rows_of(download(export_stock(client, [sku.pk], scope="all")))
    assert len(everything) == 31


def test_full_export_needs_the_permission(client, demo_shop, merchant_staff):
    Group.objects.get(name=MERCHANT_STAFF).permissions.remove(Permission.objects.get(codename="reveal_cardcode"))
    sku = sku_of("steam-wallet", "50元")
    signed_in(client, merchant_staff)
    assert export_stock(client, [sku.pk], codes_choice="full").status_code == 403
    assert not CodeAccess.objects.exists()
    with pytest.raises(Exception, match="full card codes"):
        exports.stock_export(sku_ids=[sku.pk], user=merchant_staff, full=True)


def test_full_export_has_codes_and_is_recorded(client, demo_shop, merchant_staff):
    sku = sku_of("iqiyi-vip", "90天")  # 3 codes
    signed_in(client, merchant_staff)
    rows = rows_of(download(export_stock(client, [sku.pk], codes_choice="full", REMOTE_ADDR="198.51.100.4")))
    header, body = rows[0], rows[1:]
    code_col, password_col = header.index("Code"), header.index("Password")
    assert sorted((row[code_col], row[password_col]) for row in body) == sorted(
        (demo_code(sku, n).code, demo_code(sku, n).password) for n in range(3)
    )
    access = CodeAccess.objects.get()
    assert (access.user, access.kind, access.merchant, access.code, access.code_count, access.ip_address) == (
        merchant_staff, "export", demo_shop.merchant, None, 3, "198.51.100.4",
    )  # fmt: skip


def test_exports_ignore_another_merchants_skus(client, demo_shop, merchant_staff):
    theirs = sku_of("honor-of-kings", "60点券")
    mine = sku_of("iqiyi-vip", "90天")
    signed_in(client, merchant_staff)
    rows = rows_of(download(export_stock(client, [theirs.pk, mine.pk], codes_choice="full")))
    assert len(rows) == 1 + 3
    assert all(row[2] == "90天" for row in rows[1:])
    assert CodeAccess.objects.get().code_count == 3
    for n in range(30):
        assert demo_code(theirs, n).code not in str(rows)

    CardCode.objects.filter(sku=theirs).update(status="sold", sold_at=timezone.now(), times_sold=1)
    content = download(client.post(SKU_CHANGELIST, {"action": "export_sales", "_selected_action": [theirs.pk]}))
    assert len(rows_of(content)) == 1  # header only


def test_operator_full_export_is_recorded_per_merchant(client, demo_shop, operator):
    mine = sku_of("iqiyi-vip", "90天")
    theirs = sku_of("honor-of-kings", "60点券")
    signed_in(client, operator)
    download(export_stock(client, [mine.pk, theirs.pk], codes_choice="full"))
    recorded = dict(CodeAccess.objects.values_list("merchant__slug", "code_count"))
    assert recorded == {"demo-cards": 3, "star-games": 30}


def test_cells_are_text_never_formulas(demo_shop, merchant_staff):
    sku = sku_of("office-key", "永久授权")
    services.add_codes(sku=sku, secrets=[codes.Secret(code='=HYPERLINK("http://evil.example","x")', password="=1+1")])
    export = exports.stock_export(sku_ids=[sku.pk], user=merchant_staff, full=True)
    workbook = load_workbook(export.file)
    cells = next(workbook.worksheets[0].iter_rows(min_row=2))
    values = {cell.value: cell.data_type for cell in cells if isinstance(cell.value, str)}
    assert values['=HYPERLINK("http://evil.example","x")'] == "s"
    assert values["=1+1"] == "s"


def test_sales_export_by_sku_and_day(client, demo_shop, merchant_staff):
    steam = sku_of("steam-wallet", "50元")
    course = sku_of("python-course", "标准版")
    Sku.objects.filter(pk=course.pk).update(reusable_code=True)
    today = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    yesterday = today - datetime.timedelta(days=1)
    ids = list(steam.codes.order_by("pk").values_list("pk", flat=True))
    CardCode.objects.filter(pk__in=ids[:3]).update(status="sold", sold_at=yesterday, times_sold=1)
    CardCode.objects.filter(pk__in=ids[3:5]).update(status="sold", sold_at=today, times_sold=1)
    CardCode.objects.filter(pk=course.codes.first().pk).update(reusable=True, times_sold=7, sold_at=today)

    signed_in(client, merchant_staff)
    response = client.post(SKU_CHANGELIST, {"action": "export_sales", "_selected_action": [steam.pk, course.pk]})
    rows = rows_of(download(response))
    assert rows[0][:5] == ("Merchant", "Product", "SKU", "Day", "Units sold")
    body = [(row[2], row[3].date(), row[4], row[5], row[6]) for row in rows[1:]]
    assert body == [
        ("50元", yesterday.date(), 3, 4850, 3 * 4850),
        ("50元", today.date(), 2, 4850, 2 * 4850),
        ("标准版", today.date(), 7, 9900, 7 * 9900),
    ]
