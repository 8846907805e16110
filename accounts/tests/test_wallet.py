"""The wallet ledger: append-only, numbered, never negative — by the service and by the database."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import InternalError
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import wallet
from accounts.models import Wallet, WalletEntry

pytestmark = pytest.mark.django_db(transaction=True)
Kind = WalletEntry.Kind


def entries(user) -> list[tuple[int, str, int, int]]:
    return list(
        WalletEntry.objects.filter(wallet__user=user)
        .order_by("seq")
        .values_list("seq", "kind", "amount_fen", "balance_after_fen")
    )


def test_movements_are_numbered_and_the_balance_is_their_sum(user):
    wallet.credit(user=user, amount_fen=10_000, kind=Kind.TOP_UP, reference="t1")
    wallet.debit(user=user, amount_fen=2_550, kind=Kind.PAYMENT, reference="p1")
    wallet.credit(user=user, amount_fen=550, kind=Kind.REFUND, reference="r1")

    assert entries(user) == [(1, "top_up", 10_000, 10_000), (2, "payment", -2_550, 7_450), (3, "refund", 550, 8_000)]
    assert wallet.balance_fen(user) == 8_000


def test_the_same_movement_asked_for_twice_is_recorded_once(user):
    first = wallet.credit(user=user, amount_fen=500, kind=Kind.TOP_UP, reference="same")
    again = wallet.credit(user=user, amount_fen=500, kind=Kind.TOP_UP, reference="same")
    assert again.pk == first.pk and wallet.balance_fen(user) == 500
    with pytest.raises(ValueError, match="already recorded differently"):
        wallet.credit(user=user, amount_fen=800, kind=Kind.TOP_UP, reference="same")


def test_a_debit_beyond_the_balance_changes_nothing(user):
    wallet.credit(user=user, amount_fen=100, kind=Kind.TOP_UP, reference="t")
    with pytest.raises(wallet.InsufficientBalance) as refused:
        wallet.debit(user=user, amount_fen=101, kind=Kind.PAYMENT, reference="p")
    assert (refused.value.balance_fen, refused.value.wanted_fen) == (100, 101)
    assert entries(user) == [(1, "top_up", 100, 100)]


def test_concurrent_spends_never_take_the_balance_below_zero(user):
    """Ten buyers' tabs spend 60 fen each from a 100-fen wallet at the same instant: one wins."""
    wallet.credit(user=user, amount_fen=100, kind=Kind.TOP_UP, reference="t")
    start = threading.Barrier(10)
    outcomes: list[str] = []

    def spend(i: int) -> None:
        start.wait()
        try:
            wallet.debit(user=user, amount_fen=60, kind=Kind.PAYMENT, reference=f"p{i}")
            outcomes.append("paid")
        except wallet.InsufficientBalance:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["paid"] + ["refused"] * 9
    assert wallet.balance_fen(user) == 40
    assert entries(user)[-1] == (2, "payment", -60, 40)


def test_the_database_refuses_a_forked_sequence_and_a_negative_balance_without_the_lock(user):
    """Negative control: callers that skip the service's lock still cannot break the ledger."""
    wallet.credit(user=user, amount_fen=100, kind=Kind.TOP_UP, reference="t")
    account = Wallet.objects.get(user=user)
    # Two spends computed from the same balance (what a missing lock would produce): seq 2 twice.
    WalletEntry.objects.create(
        wallet=account, seq=2, kind=Kind.PAYMENT, amount_fen=-60, balance_after_fen=40, reference="a"
    )
    with pytest.raises(IntegrityError, match="wallet_entry_seq_unique"), transaction.atomic():
        WalletEntry.objects.create(
            wallet=account, seq=2, kind=Kind.PAYMENT, amount_fen=-60, balance_after_fen=40, reference="b"
        )
    with pytest.raises(IntegrityError, match="wallet_balance_never_negative"), transaction.atomic():
        WalletEntry.objects.create(
            wallet=account, seq=3, kind=Kind.PAYMENT, amount_fen=-60, balance_after_fen=-20, reference="c"
        )
    assert wallet.balance_fen(user) == 40


@pytest.mark.parametrize("sql", ["UPDATE accounts_walletentry SET amount_fen = 1", "DELETE FROM accounts_walletentry"])
def test_entries_cannot_be_changed_or_deleted(user, sql):
    entry = wallet.credit(user=user, amount_fen=100, kind=Kind.TOP_UP, reference="t")
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        WalletEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(InternalError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert entries(user) == [(1, "top_up", 100, 100)]


# -- the buyer's page -----------------------------------------------------------------------------------


def signed_in(user, password) -> Client:
    browser = Client()
    browser.cookies["django_language"] = "en"
    assert browser.login(email=user.email, password=password)
    return browser


def test_wallet_page_shows_the_balance_and_its_movements(user, password, client):
    assert client.get(reverse("accounts:wallet")).status_code == 302  # sign-in first
    wallet.credit(user=user, amount_fen=12_345, kind=Kind.TOP_UP, reference="t")
    wallet.debit(user=user, amount_fen=2_345, kind=Kind.PAYMENT, reference="p")
    page = signed_in(user, password).get(reverse("accounts:wallet")).content.decode()
    assert 'id="wallet-balance">¥100.00<' in page
    assert "+¥123.45" in page and "\u2212¥23.45" in page  # a minus sign before the currency (issue 11)


def test_wallet_page_queries_do_not_grow_with_the_movements(user, password):
    browser = signed_in(user, password)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert browser.get(reverse("accounts:wallet")).status_code == 200
        return len(queries)

    wallet.credit(user=user, amount_fen=100, kind=Kind.TOP_UP, reference="t0")
    count()  # the first view caches the shop's settings (catalog/shop.py)
    one = count()
    for i in range(1, 30):
        wallet.credit(user=user, amount_fen=100, kind=Kind.TOP_UP, reference=f"t{i}")
    assert count() == one


# -- operators ------------------------------------------------------------------------------------------


def test_operator_records_a_top_up_once_however_often_the_form_is_sent(operator, password, user):
    browser = signed_in(operator, password)
    url = reverse("admin:accounts_walletentry_add")
    form = {"user": user.pk, "kind": "top_up", "amount": "50.00", "note": "bank transfer 0042", "key": "k" * 32}
    assert browser.post(url, form).status_code == 302
    assert browser.post(url, form).status_code == 302  # the same form sent again
    assert entries(user) == [(1, "top_up", 5_000, 5_000)]
    assert WalletEntry.objects.get().created_by == operator


def test_operator_cannot_withdraw_more_than_the_balance(operator, password, user):
    wallet.credit(user=user, amount_fen=1_000, kind=Kind.TOP_UP, reference="t")
    response = signed_in(operator, password).post(
        reverse("admin:accounts_walletentry_add"),
        {"user": user.pk, "kind": "withdrawal", "amount": "-10.01", "note": "payout", "key": "w" * 32},
    )
    assert response.status_code == 200
    assert "cannot go below zero" in response.content.decode()
    assert wallet.balance_fen(user) == 1_000


def test_merchant_staff_do_not_see_wallets(merchant_staff, password, user):
    wallet.credit(user=user, amount_fen=1_000, kind=Kind.TOP_UP, reference="t")
    browser = signed_in(merchant_staff, password)
    assert browser.get(reverse("admin:accounts_walletentry_changelist")).status_code == 403
    assert browser.get(reverse("admin:accounts_walletentry_add")).status_code == 403
