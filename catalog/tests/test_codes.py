"""Card codes at rest: encrypted, fingerprinted, masked; duplicates and double sales refused by the database."""

import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from catalog import codes, services
from catalog.models import CardCode

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(db):
    from catalog.demo import seed_demo

    return seed_demo(with_users=False, with_codes=False)


@pytest.fixture
def sku(shop):
    return shop.products["steam-wallet"].skus.get(label="100元")


def raw_rows(sku_id):
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload, fingerprint, hint FROM catalog_cardcode WHERE sku_id = %s", [sku_id])
        return cursor.fetchall()


def test_plaintext_never_reaches_the_table(sku):
    services.add_codes(sku=sku, secrets=[codes.Secret("STEAM-AAAA-BBBB-CCCC", password="pw-123456")])
    stored = " ".join(" ".join(row) for row in raw_rows(sku.pk))
    assert "STEAM-AAAA-BBBB-CCCC" not in stored
    assert "AAAA-BBBB" not in stored
    assert "pw-123456" not in stored
    code = sku.codes.get(hint=codes.mask("STEAM-AAAA-BBBB-CCCC"))
    assert services.reveal(code=code) == codes.Secret("STEAM-AAAA-BBBB-CCCC", password="pw-123456")


def test_mask_shows_only_the_ends():
    assert codes.mask("STEAM-AAAA-BBBB-CCCC") == "ST••••••••CC"
    assert codes.mask("ABCDE") == "A•••E"
    assert codes.mask("abc") == "•••"
    assert "<hidden>" in repr(codes.Secret("SECRET")) and "SECRET" not in f"{codes.Secret('SECRET')}"


def test_same_code_twice_in_one_sku_is_refused_by_the_database(sku, shop):
    services.add_codes(sku=sku, secrets=[codes.Secret("DUP-1")])
    with pytest.raises(IntegrityError), transaction.atomic():
        services.add_codes(sku=sku, secrets=[codes.Secret("  DUP-1 ")])  # surrounding blanks don't hide it
    other = shop.products["steam-wallet"].skus.get(label="50元")
    services.add_codes(sku=other, secrets=[codes.Secret("DUP-1")])  # another SKU may hold it


def test_single_use_code_cannot_be_sold_twice_even_by_raw_sql(sku):
    [code] = services.add_codes(sku=sku, secrets=[codes.Secret("ONCE-ONLY")])
    CardCode.objects.filter(pk=code.pk).update(status="sold", sold_at=timezone.now(), times_sold=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        CardCode.objects.filter(pk=code.pk).update(times_sold=2)


def test_reusable_codes_may_be_sold_many_times(sku):
    sku.reusable_code = True
    sku.save()
    [code] = services.add_codes(sku=sku, secrets=[codes.Secret("SHARED-KEY")])
    CardCode.objects.filter(pk=code.pk).update(times_sold=5)
    assert CardCode.objects.get(pk=code.pk).times_sold == 5


@pytest.mark.parametrize(
    ("status", "extra"), [("reserved", {}), ("sold", {"times_sold": 1}), ("void", {})]
)  # fmt: skip
def test_states_need_their_timestamps(sku, status, extra):
    [code] = services.add_codes(sku=sku, secrets=[codes.Secret(f"TS-{status}")])
    with pytest.raises(IntegrityError), transaction.atomic():
        CardCode.objects.filter(pk=code.pk).update(status=status, **extra)


def test_no_key_configured_is_a_clear_error(settings, sku):
    settings.CARD_CODE_KEYS = []
    with pytest.raises(Exception, match="CARD_CODE_KEYS is empty"):
        services.add_codes(sku=sku, secrets=[codes.Secret("X")])


def test_rotation_re_encrypts_everything_so_the_old_key_can_go(settings, sku):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CARD_CODE_KEYS = [old]
    services.add_codes(sku=sku, secrets=[codes.Secret(f"ROT-{n}", password=f"p{n}") for n in range(5)])
    before = raw_rows(sku.pk)

    settings.CARD_CODE_KEYS = [new, old]
    # During the rotation window a re-import of an old code is still recognised as a duplicate.
    assert set(codes.fingerprints("ROT-1")) & {row[1] for row in before}
    out = io.StringIO()
    call_command("rotate_card_keys", "--batch-size", "2", stdout=out)
    assert "card codes: 5 re-encrypted" in out.getvalue()
    after = raw_rows(sku.pk)
    assert {row[0] for row in after}.isdisjoint({row[0] for row in before})

    settings.CARD_CODE_KEYS = [new]  # old key removed: everything still decrypts
    revealed = sorted(services.reveal(code=c).code for c in sku.codes.all())
    assert revealed == [f"ROT-{n}" for n in range(5)]
    assert {row[1] for row in after} == {codes.fingerprint(f"ROT-{n}") for n in range(5)}
    with pytest.raises(IntegrityError), transaction.atomic():
        services.add_codes(sku=sku, secrets=[codes.Secret("ROT-3")])


def test_rotation_stops_on_a_code_no_key_can_open(settings, sku):
    settings.CARD_CODE_KEYS = [Fernet.generate_key().decode()]
    services.add_codes(sku=sku, secrets=[codes.Secret("LOST")])
    settings.CARD_CODE_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(Exception, match="cannot be decrypted with any configured key"):
        call_command("rotate_card_keys", stdout=io.StringIO())
    with pytest.raises(InvalidToken):
        services.reveal(code=sku.codes.get())
