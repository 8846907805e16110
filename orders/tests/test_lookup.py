"""Guest order look-up: normalised numbers, limits per number and IP, bounded e-mail look-ups,
statuses in the result list, the too-many-attempts message, and weak chosen secrets refused."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from orders import services
from orders.models import Order
from orders.tests.conftest import delivered, place

pytestmark = pytest.mark.django_db(transaction=True)
LOOKUP = "/orders/lookup/"
TOO_MANY = (
    "Too many attempts. Please wait %(minutes)d minute and try again.",
    "Too many attempts. Please wait %(minutes)d minutes and try again.",
)


def visitor(ip: str = "203.0.113.5", language: str = "en") -> Client:
    client = Client(REMOTE_ADDR=ip)
    client.cookies["django_language"] = language
    return client


def look(client: Client, number: str, secret: str):
    return client.post(LOOKUP, {"number": number, "secret": secret})


@pytest.fixture
def many_unpaid(settings):
    settings.MAX_UNPAID_ORDERS = 100


# --- the number is normalised before it is limited and looked up -------------------------------------------
def test_padding_or_lower_case_does_not_reset_the_limit(stocked_sku):
    number = place(stocked_sku).order.number
    attacker = visitor()
    for _ in range(5):
        assert look(attacker, number, "WRONGWRONG").status_code == 200
    for variant in (f"  {number} ", number.lower(), f"{number[:5]} {number[5:]}", f"\u3000{number}"):
        response = look(attacker, variant, "WRONGWRONG")
        assert response.status_code == 429, variant


def test_a_number_typed_with_spaces_and_lower_case_is_found(stocked_sku):
    placed = place(stocked_sku)
    typed = f" {placed.order.number[:7].lower()} {placed.order.number[7:]} "
    response = look(visitor(), typed, placed.query_secret.lower())
    assert response.status_code == 302 and response.url == placed.order.get_absolute_url()


# --- limits per number and IP, per IP, per number ---------------------------------------------------------
def test_a_strangers_failures_do_not_lock_the_buyer_out_on_another_network(stocked_sku):
    placed = place(stocked_sku)
    attacker = visitor("203.0.113.5")
    for _ in range(5):
        look(attacker, placed.order.number, "WRONGWRONG")
    assert look(attacker, placed.order.number, placed.query_secret).status_code == 429  # the guesser is held
    buyer = visitor("198.51.100.77")
    response = look(buyer, placed.order.number, placed.query_secret)
    assert response.status_code == 302 and response.url == placed.order.get_absolute_url()


def test_one_address_is_limited_across_numbers(stocked_sku):
    placed = place(stocked_sku)
    attacker = visitor()
    for n in range(10):
        assert look(attacker, f"K2412010000{n:06d}", "WRONGWRONG").status_code == 200
    assert look(attacker, placed.order.number, placed.query_secret).status_code == 429


def test_a_guesser_spread_over_many_addresses_is_limited_per_number(stocked_sku):
    placed = place(stocked_sku)
    for n in range(50):
        assert look(visitor(f"203.0.113.{n + 1}"), placed.order.number, "WRONGWRONG").status_code == 200
    assert look(visitor("198.51.100.1"), placed.order.number, "WRONGWRONG").status_code == 429


def test_successful_look_ups_do_not_count(stocked_sku):
    placed = place(stocked_sku)
    client = visitor()
    for _ in range(12):
        assert look(client, placed.order.number, placed.query_secret).status_code == 302


# --- the too-many-attempts message -----------------------------------------------------------------------
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_too_many_attempts_is_said_on_the_lookup_page_in_the_shoppers_language(stocked_sku, language):
    number = place(stocked_sku).order.number
    client = visitor(language=language)
    for _ in range(5):
        look(client, number, "WRONGWRONG")
    response = look(client, number, "WRONGWRONG")
    assert response.status_code == 429
    with translation.override(language):
        message = translation.ngettext(*TOO_MANY, 15) % {"minutes": 15}
    html = response.content.decode()
    assert message in html and 'name="secret"' in html
    if language == "zh-hans":
        assert "Too many" not in message


# --- look-up by e-mail: bounded work, no cancelled or expired orders, statuses shown ---------------------
def test_email_look_up_costs_at_most_three_slow_hashes(stocked_sku, many_unpaid, monkeypatch):
    for _ in range(5):
        place(stocked_sku, email="many@example.com", chosen_secret="same-strong-words")
    calls = []
    real = services.check_password
    monkeypatch.setattr(services, "check_password", lambda *a, **k: calls.append(1) or real(*a, **k))
    response = look(visitor(), "MANY@example.com", "same-strong-words")
    assert len(calls) == services.LOOKUP_SLOW_CHECKS == 3
    assert len(response.context["found"]) == 3  # the three most recent; older ones by number


def test_email_look_up_skips_cancelled_and_expired_orders(stocked_sku, many_unpaid):
    kept = place(stocked_sku, email="mixed@example.com", chosen_secret="mixed-strong-words")
    cancelled = place(stocked_sku, email="mixed@example.com", chosen_secret="mixed-strong-words")
    expired = place(stocked_sku, email="mixed@example.com", chosen_secret="mixed-strong-words")
    Order.objects.filter(pk=cancelled.order.pk).update(status=Order.Status.CANCELLED)
    Order.objects.filter(pk=expired.order.pk).update(reserved_until=expired.order.created_at)
    response = look(visitor(), "mixed@example.com", "mixed-strong-words")
    assert response.status_code == 302 and response.url == kept.order.get_absolute_url()


def test_found_orders_show_status_amount_and_date(stocked_sku, many_unpaid):
    paid = delivered(stocked_sku, email="two@example.com", chosen_secret="two-strong-words")
    unpaid = place(stocked_sku, email="two@example.com", chosen_secret="two-strong-words").order
    assert paid.total_fen == unpaid.total_fen
    response = look(visitor(), "two@example.com", "two-strong-words")
    assert response.status_code == 200
    html = response.content.decode()
    rows = html.split('id="found-orders"')[1].split("</ul>")[0].split("<li")[1:]
    by_number = {next(o for o in (paid, unpaid) if o.number in row).number: row for row in rows}
    assert "delivered" in by_number[paid.number] and "awaiting payment" in by_number[unpaid.number]
    assert "¥10.00" in by_number[paid.number] and f"{unpaid.created_at:%Y-}" in by_number[unpaid.number]


# --- weak chosen secrets are refused at checkout, with the reason -------------------------------------------
@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("123456", "It is shorter than 8 characters."),
        ("12345678", "This password is entirely numeric."),
        ("password1", "This password is too common."),
        ("abcdefghij", "It is a run of repeated or consecutive characters, like aaaaaaaa or abcdefgh."),
        ("weak-shopper", "It is too close to your e-mail address or phone number."),
    ],
)
def test_weak_chosen_secrets_are_refused_with_a_reason(client, stocked_sku, secret, reason):
    client.cookies["django_language"] = "en"
    client.post(reverse("orders:cart_add"), {"sku": stocked_sku.pk, "quantity": 1})
    form = client.get(reverse("orders:checkout")).context["form"]
    data = {"idempotency_key": form["idempotency_key"].value(), "email": "weak-shopper@example.com"}
    response = client.post(reverse("orders:checkout"), {**data, "query_secret": secret})
    assert response.status_code == 200 and not Order.objects.exists()
    assert reason in response.context["form"].errors["query_secret"]
