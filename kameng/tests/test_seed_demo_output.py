"""What `make run` prints when it seeds the demo shop: who each sign-in is, and where e-mail goes.

Before: three "admin sign-in" lines with no role (the third missing from the README), and the two
low-stock e-mails of the demo stock printed whole by the console mail backend.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from catalog.demo import DEMO_SIGN_INS
from kameng import outbox

ROOT = Path(__file__).resolve().parents[2]


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_seeding_labels_each_sign_in_and_says_where_mail_goes_once(settings, tmp_path):
    settings.DEBUG = True  # demo sign-ins exist only in DEBUG
    settings.EMAIL_BACKEND = "kameng.outbox.OutboxBackend"  # the embedded run's (test_mail_and_logs)
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox")

    first = seed()

    lines = first.splitlines()
    for email, password, role in DEMO_SIGN_INS:
        (line,) = [line for line in lines if line.split()[:3] == [email, "/", password]]
        assert role in line
    assert [role.split(":")[0].split(" of ")[0] for _e, _p, role in DEMO_SIGN_INS] == [
        "operator",
        "merchant staff",
        "merchant staff",
    ]
    assert f"{settings.SITE_URL}/admin/" in first
    assert f"{tmp_path / 'outbox'}/" in first and f"{settings.SITE_URL}/dev/outbox/" in first
    kept = outbox.list_messages(tmp_path / "outbox")
    assert len(kept) == 2 and "2 written while seeding (low-stock alerts" in first
    assert "Content-Type" not in first  # no message is printed

    again = seed()  # every `make run` seeds again: the same alerts are not sent twice
    assert len(outbox.list_messages(tmp_path / "outbox")) == 2
    assert "written while seeding" not in again


def test_the_readme_lists_every_demo_sign_in_with_its_role():
    readme = (ROOT / "README.md").read_text()
    for email, password, _role in DEMO_SIGN_INS:
        assert f"`{email}` / `{password}`" in readme
    assert "operator" in readme and "merchant staff" in readme
