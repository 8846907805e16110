"""Guest orders are claimed into an account by an e-mail address it has verified (issue 13):
on confirmation, and at sign-up/login for addresses already verified; never by an unverified one.
Then they are the account's: in "my orders", on the order page for the owner only, no longer
found by the query secret, still open in the signed-out browser that placed them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from accounts.models import User
from catalog.models import Product
from orders import access, services
from orders.models import Order, OrderEvent
from orders.tests.conftest import place
from orders.tests.test_concurrency import run_in_threads

PASSWORD = "a-long-Passw0rd!"
CONFIRM_LINK = re.compile(r"https?://[^\s\"'<>]*/accounts/confirm-email/[^\s\"'<>]+/")


def claimed_events(order: Order) -> list[OrderEvent]:
    return list(order.events.filter(kind=OrderEvent.Kind.CLAIMED))


def sign_up(client: Client, email: str, django_capture_on_commit_callbacks) -> User:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    return User.objects.get(email=email.strip().lower())


def confirmation_link(email: str) -> str:
    links = [link for m in mail.outbox if email in m.to for link in CONFIRM_LINK.findall(m.body)]
    assert len(links) == 1, [m.subject for m in mail.outbox]
    return urlsplit(links[0]).path


@pytest.mark.django_db
def test_confirming_the_address_claims_its_guest_orders_case_insensitively_once(
    client, stocked_sku, django_capture_on_commit_callbacks
):
    mixed = place(stocked_sku, email="  Guest@Example.COM ").order
    plain = place(stocked_sku, email="guest@example.com").order
    other = place(stocked_sku, email="other@example.com").order
    someone = User.objects.create_user(email="someone@example.com", password=PASSWORD)
    owned = place(stocked_sku, email="guest@example.com", buyer=someone).order

    user = sign_up(client, "GUEST@example.com", django_capture_on_commit_callbacks)
    # Signed up and signed in, but the address is not verified: nothing is claimed yet.
    assert not EmailAddress.objects.get(user=user).verified
    assert Order.objects.filter(buyer=user).count() == 0
    assert list(client.get("/orders/").context["orders"]) == []

    link = confirmation_link("guest@example.com")
    client.post(link)
    assert EmailAddress.objects.get(user=user).verified

    for order in (mixed, plain, other, owned):
        order.refresh_from_db()
    assert mixed.buyer == user and plain.buyer == user
    assert other.buyer is None and claimed_events(other) == []
    assert owned.buyer == someone and claimed_events(owned) == []
    for order in (mixed, plain):
        [event] = claimed_events(order)
        assert event.actor == user and event.data == {"via": "email"}
        assert event.from_status == event.to_status == order.status

    listed = client.get("/orders/")
    assert {order.number for order in listed.context["orders"]} == {mixed.number, plain.number}
    assert mixed.number in listed.content.decode()
    assert client.get(mixed.get_absolute_url()).status_code == 200

    # Confirming again (or logging in again) claims nothing more and records nothing more.
    assert services.claim_guest_orders(user=user, email="guest@example.com") == 0
    client.logout()
    assert client.login(email="guest@example.com", password=PASSWORD)
    assert sum(len(claimed_events(order)) for order in (mixed, plain)) == 2


@pytest.mark.django_db
def test_an_unverified_address_claims_nothing_at_login(client, stocked_sku):
    guest = place(stocked_sku, email="unverified@example.com").order
    user = User.objects.create_user(email="unverified@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=user, email="unverified@example.com", verified=False, primary=True)
    response = client.post("/accounts/login/", {"login": "unverified@example.com", "password": PASSWORD})
    assert response.status_code == 302
    guest.refresh_from_db()
    assert guest.buyer is None


@pytest.mark.django_db
def test_an_address_already_verified_claims_at_login_only_its_own_orders(client, stocked_sku):
    """A social or pre-verified sign-up, or guest orders placed signed out after the address was verified."""
    user = User.objects.create_user(email="known@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=user, email="known@example.com", verified=True, primary=True)
    EmailAddress.objects.create(user=user, email="second@example.com", verified=False, primary=False)
    guest = place(stocked_sku, email="Known@Example.com").order
    unverified = place(stocked_sku, email="second@example.com").order
    response = client.post("/accounts/login/", {"login": "known@example.com", "password": PASSWORD})
    assert response.status_code == 302
    guest.refresh_from_db()
    unverified.refresh_from_db()
    assert guest.buyer == user and len(claimed_events(guest)) == 1
    assert unverified.buyer is None


@pytest.mark.django_db
def test_claim_needs_a_signed_in_user_and_an_address(stocked_sku, user):
    guest = place(stocked_sku, email="buyer@example.com").order
    assert services.claim_guest_orders(user=user, email="  ") == 0
    assert services.claim_guest_orders(user=None, email="buyer@example.com") == 0
    assert services.claim_guest_orders(user=user, email=" BUYER@example.com") == 1
    guest.refresh_from_db()
    assert guest.buyer == user


@pytest.mark.django_db
def test_a_claimed_order_is_the_accounts_on_the_order_page(stocked_sku, user):
    placed = place(stocked_sku, email="buyer@example.com")
    order = placed.order
    # The browser that placed it as a guest (signed out) keeps it: mid-checkout it can still pay.
    placing = Client()
    session = placing.session
    session[access.SESSION_KEY] = [order.pk]
    session.save()
    assert placing.get(order.get_absolute_url()).status_code == 200

    assert services.claim_guest_orders(user=user, email="buyer@example.com") == 1

    assert placing.get(order.get_absolute_url()).status_code == 200
    owner = Client()
    owner.force_login(user)
    assert owner.get(order.get_absolute_url()).status_code == 200
    assert Client().get(order.get_absolute_url()).status_code == 404  # anonymous, with the link
    # The query secret no longer opens it for another browser.
    stranger = Client()
    response = stranger.post("/orders/lookup/", {"number": order.number, "secret": placed.query_secret})
    assert response.status_code == 200 and stranger.get(order.get_absolute_url()).status_code == 404
    # A browser that knew it as a guest order but is signed in as someone else does not see it.
    other = User.objects.create_user(email="other-buyer@example.com", password=PASSWORD)
    placing.force_login(other)
    assert access.SESSION_KEY in placing.session  # login keeps the session's data
    assert placing.get(order.get_absolute_url()).status_code == 404


@pytest.mark.django_db
def test_claimed_orders_count_towards_the_per_buyer_limit(stocked_sku, user):
    product = Product.objects.get(pk=stocked_sku.product_id)
    product.max_per_buyer = 1
    product.save(update_fields=["max_per_buyer"])
    place(stocked_sku, email="buyer@example.com")
    services.claim_guest_orders(user=user, email="buyer@example.com")
    with pytest.raises(services.CheckoutError, match="限购"):
        place(stocked_sku, email="buyer@example.com", buyer=user)


@pytest.mark.django_db(transaction=True)
def test_concurrent_confirmations_claim_each_order_once(stocked_sku):
    user = User.objects.create_user(email="race@example.com", password=PASSWORD)
    orders = [place(stocked_sku, email="race@example.com").order for _ in range(3)]
    results = run_in_threads(8, lambda _: services.claim_guest_orders(user=user, email="race@example.com"), workers=8)
    assert all(isinstance(result, int) for result in results), results
    assert sum(results) == 3
    assert Order.objects.filter(pk__in=[o.pk for o in orders], buyer=user).count() == 3
    assert OrderEvent.objects.filter(order__in=orders, kind=OrderEvent.Kind.CLAIMED).count() == 3
