"""accounts 0006: existing free-text phone numbers become E.164 where valid, unique when set."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def test_valid_numbers_are_kept_in_e164_invalid_and_duplicate_ones_dropped():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()  # every app: dependants come back too
    old = migrate([("accounts", "0005_points_and_member_levels")])
    try:
        User = old.get_model("accounts", "User")
        for email, phone in [
            ("a@example.com", "138 0013 8000"),  # typed with spaces, no country code
            ("b@example.com", "+86 138-0013-8000"),  # the same number again: the older account keeps it
            ("c@example.com", "0085251234567"),  # international prefix
            ("d@example.com", "12345"),  # not a number
            ("e@example.com", ""),
        ]:
            User.objects.create(email=email, phone=phone, password="!")
        new = migrate(latest)
        User = new.get_model("accounts", "User")
        rows = dict(User.objects.values_list("email", "phone"))
        assert rows == {
            "a@example.com": "+8613800138000",
            "b@example.com": "",
            "c@example.com": "+85251234567",
            "d@example.com": "",
            "e@example.com": "",
        }
        assert not User.objects.filter(phone_verified=True).exists()
    finally:
        migrate(latest)
