"""Card codes never reach a log: the embedded run keeps e-mail in an outbox, production needs a server.

Before: with no EMAIL_URL the console backend printed every delivery e-mail, codes included, into
the log (docker-compose defaulted to it too), and `check --deploy` said nothing.
"""

from __future__ import annotations

import importlib
import logging
import sys

import pytest
from django.test import Client
from django.urls import Resolver404, clear_url_caches, resolve, reverse

from catalog import codes
from catalog import services as catalog_services
from catalog.models import Sku
from kameng import outbox
from kameng.tests.test_configuration import GOOD_PRODUCTION, manage
from orders.models import OrderItemCode
from orders.tests.conftest import delivered

CONSOLE = "django.core.mail.backends.console.EmailBackend"


@pytest.fixture
def sku(demo_shop):
    product = demo_shop.products["steam-wallet"]
    sku = Sku.objects.create(product=product, label="日志", price_fen=1000, low_stock_threshold=0)
    catalog_services.add_codes(
        sku=sku, secrets=[codes.Secret(f"LOGCHECK-{i:03d}-ZQX", password=f"PW{i:03d}KV") for i in range(3)]
    )
    return sku


@pytest.fixture
def outbox_dir(settings, tmp_path):
    """The embedded run's mail settings (asserted against the real settings in the next test)."""
    settings.EMAIL_BACKEND = "kameng.outbox.OutboxBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox")
    return tmp_path / "outbox"


def test_the_embedded_run_keeps_mail_in_the_outbox():
    shown = "from django.conf import settings; print('MAIL', settings.EMAIL_BACKEND, settings.EMAIL_FILE_PATH)"
    embedded = manage("shell", "--no-imports", "-c", shown, env={"DEBUG": "true"})
    assert embedded.returncode == 0, embedded.stderr
    _label, backend, path = next(line for line in embedded.stdout.splitlines() if line.startswith("MAIL")).split()
    assert backend == "kameng.outbox.OutboxBackend" and path.endswith("var/outbox")


def delivered_secret(sku) -> tuple[str, list[str]]:
    order = delivered(sku, email="buyer@example.com")
    secret = codes.decrypt(OrderItemCode.objects.get(item__order=order).code.payload)
    return order.number, [secret.code, secret.password]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("backend", "leaks"), [("kameng.outbox.OutboxBackend", False), (CONSOLE, True)])
def test_a_delivery_puts_no_code_in_any_log(backend, leaks, sku, outbox_dir, settings, caplog, capfd):
    """The console backend is the negative control: the same delivery does print the code there."""
    settings.EMAIL_BACKEND = backend
    caplog.set_level(logging.DEBUG)  # the root logger, every level
    _number, secret = delivered_secret(sku)
    sys.stdout.flush()
    sys.stderr.flush()
    out, err = capfd.readouterr()
    logged = caplog.text + "\n".join(str(record.args) for record in caplog.records)
    for plaintext in secret:
        assert (plaintext in out + err) is leaks
        assert plaintext not in logged
    if not leaks:
        (kept,) = outbox.list_messages(outbox_dir)  # the buyer's mail is there, with the code
        assert kept.to == "buyer@example.com"
        assert all(p in (outbox_dir / kept.name).read_text() for p in secret)
        assert f"/dev/outbox/{kept.name}/" in caplog.text or str(outbox_dir / kept.name) in caplog.text


@pytest.mark.parametrize("email_url", [None, "consolemail://", "dummymail://", "memorymail://", "filemail:///tmp/m"])
def test_production_without_a_mail_server_does_not_start(email_url):
    env = {k: v for k, v in GOOD_PRODUCTION.items() if k != "EMAIL_URL"}
    if email_url:
        env["EMAIL_URL"] = email_url
    result = manage("check", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "EMAIL_URL" in result.stderr and "Traceback" not in result.stderr
    if email_url:
        assert "does not send e-mail" in result.stderr


def test_production_with_smtp_starts():
    env = {**GOOD_PRODUCTION, "EMAIL_URL": "smtp+tls://shop:pa55@smtp.example.com:587"}
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr


# --- /dev/outbox/ ---------------------------------------------------------------------------------
def _reload_urls():
    import kameng.urls

    importlib.reload(kameng.urls)
    clear_url_caches()


@pytest.fixture
def debug_urls(settings):
    """The URLconf as the embedded run builds it (pytest-django runs tests with DEBUG off)."""
    settings.DEBUG = True
    _reload_urls()
    yield
    settings.DEBUG = False
    _reload_urls()


@pytest.fixture
def kept_delivery(sku, outbox_dir):
    _number, secret = delivered_secret(sku)
    (kept,) = outbox.list_messages(outbox_dir)
    return kept, secret


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
def test_operators_read_kept_mail(debug_urls, kept_delivery, operator):
    kept, secret = kept_delivery
    assert kept.sent_at.tzinfo is not None  # shown in the shop's time zone, not as naive UTC
    client = signed_in(operator)
    listing = client.get(reverse("outbox"))
    assert listing.status_code == 200
    assert kept.subject in listing.content.decode() and "buyer@example.com" in listing.content.decode()
    assert secret[0] not in listing.content.decode()  # the list shows headers only
    page = client.get(reverse("outbox_message", args=[kept.name]))
    assert page.status_code == 200
    assert secret[0] in page.content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("active", [True, False])
def test_the_operators_group_reads_kept_mail_while_active(debug_urls, kept_delivery, active):
    """Not only superusers: staff in the Operators group (accounts.operate_platform), as
    accounts.roles.is_operator says — checked by kameng itself, which imports no app."""
    from django.contrib.auth.models import Group

    from accounts.models import User
    from accounts.roles import OPERATORS, is_operator, sync_roles

    sync_roles()
    staff = User.objects.create_user(email="ops@example.com", password="x" * 12, is_staff=True, is_active=active)
    staff.groups.add(Group.objects.get(name=OPERATORS))
    kept, secret = kept_delivery
    client = Client()
    client.force_login(staff)  # an inactive user's session is refused by Django: anonymous then
    response = client.get(reverse("outbox_message", args=[kept.name]))
    assert is_operator(User.objects.get(pk=staff.pk)) is active
    assert (response.status_code == 200) is active
    assert (secret[0] in response.content.decode()) is active


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", ["anonymous", "user", "merchant_staff", "other_merchant_staff"])
def test_nobody_else_reads_kept_mail(debug_urls, kept_delivery, who, request):
    kept, secret = kept_delivery
    client = Client() if who == "anonymous" else signed_in(request.getfixturevalue(who))
    for url in (reverse("outbox"), reverse("outbox_message", args=[kept.name])):
        response = client.get(url)
        if who == "anonymous":
            assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))
        else:
            assert response.status_code == 403
        assert secret[0] not in response.content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["nope.eml", "..%2F..%2Fmanage.py", "20260101-000000-000000-00000000.eml"])
def test_only_kept_files_are_shown(debug_urls, kept_delivery, operator, name):
    assert signed_in(operator).get(f"/dev/outbox/{name}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_without_debug_the_outbox_does_not_exist(debug_urls, kept_delivery, operator, settings):
    kept, _secret = kept_delivery
    settings.DEBUG = False
    assert signed_in(operator).get(reverse("outbox_message", args=[kept.name])).status_code == 404  # view refuses
    _reload_urls()
    with pytest.raises(Resolver404):
        resolve("/dev/outbox/")
