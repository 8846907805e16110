"""The back office of marketing: the Operators group (data migration and the sync after migrate), who may
see and change which promotion (operator, the merchant's staff, another merchant's staff), and the
audit trail of promotion changes (recorded with actor, before and after; read-only in admin;
append-only in the database)."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.roles import OPERATORS, is_operator
from catalog.models import Sku
from kameng.testing.fixtures import PASSWORD
from marketing.models import Coupon, FirstOrderOffer, FlashSpecial, QuantityTier, SpendTier, SpendTierPromotion

pytestmark = pytest.mark.django_db

migration = importlib.import_module("marketing.migrations.0008_backoffice")


# -- the Operators group ---------------------------------------------------------------------------------


class _Editor:
    def __init__(self):
        self.connection = connection


def test_the_data_migration_creates_the_operators_group_with_marketing_permissions():
    Group.objects.filter(name=OPERATORS).delete()
    from django.apps import apps

    migration.create_operators_group(apps, _Editor())
    group = Group.objects.get(name=OPERATORS)
    codenames = set(group.permissions.values_list("content_type__app_label", "codename"))
    for model in ("coupon", "flashspecial", "spendtierpromotion", "spendtier", "firstorderoffer", "quantitytier",
                  "referralprogram", "commission"):  # fmt: skip
        for action in ("view", "add", "change", "delete"):
            assert ("marketing", f"{action}_{model}") in codenames
    assert ("accounts", "operate_platform") in codenames
    assert ("auditlog", "view_logentry") in codenames
    assert ("auditlog", "change_logentry") not in codenames
    # Idempotent: run again, nothing doubles or fails.
    migration.create_operators_group(apps, _Editor())
    assert set(Group.objects.get(name=OPERATORS).permissions.values_list("content_type__app_label", "codename")) == (
        codenames
    )
    # A staff user in the group is an operator (accounts/roles.py), without being a superuser.
    staff = User.objects.create_user(email="ops@example.com", password=PASSWORD, is_staff=True)
    assert not is_operator(staff)
    staff.groups.add(group)
    assert is_operator(User.objects.get(pk=staff.pk))


def test_the_migration_runs_against_the_historical_models():
    # The app registry as of the migration (what `migrate` passes it), not the live models.
    state = MigrationLoader(connection).project_state(("marketing", "0008_backoffice"))
    Group.objects.filter(name=OPERATORS).delete()
    migration.create_operators_group(state.apps, _Editor())
    assert Group.objects.get(name=OPERATORS).permissions.filter(codename="change_coupon").exists()


def test_after_every_migrate_the_group_gets_the_permissions_of_marketing_models_added_later():
    group = Group.objects.get(name=OPERATORS)
    # A model another branch adds (a campaign): its content type and permissions exist, the group lacks them.
    campaign = ContentType.objects.create(app_label="marketing", model="campaignfromlater")
    new_perm = Permission.objects.create(content_type=campaign, codename="change_campaignfromlater", name="x")
    group.permissions.remove(*Permission.objects.filter(codename="view_coupon"))
    assert not group.permissions.filter(pk=new_perm.pk).exists()
    call_command("migrate", verbosity=0)  # nothing to migrate; post_migrate runs
    assert group.permissions.filter(pk=new_perm.pk).exists()
    assert group.permissions.filter(codename="view_coupon").exists()
    before = group.permissions.count()
    call_command("migrate", verbosity=0)
    assert group.permissions.count() == before  # idempotent


# -- who sees and changes which promotion ------------------------------------------------------------------


@pytest.fixture
def promos(demo_shop):
    now = timezone.now()
    own_sku = Sku.objects.create(product=demo_shop.products["steam-wallet"], label="S1", price_fen=1_000)
    their_sku = Sku.objects.create(product=demo_shop.products["honor-of-kings"], label="S2", price_fen=1_000)
    assert own_sku.product.merchant == demo_shop.merchant and their_sku.product.merchant == demo_shop.other_merchant
    window = {"starts_at": now - timedelta(hours=1), "ends_at": now + timedelta(days=1)}
    return {
        "own_sku": own_sku,
        "their_sku": their_sku,
        "own_special": FlashSpecial.objects.create(sku=own_sku, special_price_fen=800, quantity_cap=5, **window),
        "platform_special_on_own": FlashSpecial.objects.create(
            sku=own_sku, special_price_fen=700, quantity_cap=5, funded_by="platform", **window
        ),
        "their_special": FlashSpecial.objects.create(sku=their_sku, special_price_fen=800, quantity_cap=5, **window),
        "own_spend": SpendTierPromotion.objects.create(
            name="own-spend", scope="merchant", merchant=demo_shop.merchant, funded_by="merchant"
        ),
        "platform_spend_on_own": SpendTierPromotion.objects.create(
            name="platform-spend-on-own", scope="merchant", merchant=demo_shop.merchant, funded_by="platform"
        ),
        "their_spend": SpendTierPromotion.objects.create(
            name="their-spend", scope="merchant", merchant=demo_shop.other_merchant, funded_by="merchant"
        ),
        "own_coupon": Coupon.objects.create(
            code="OWN", name="own", amount_fen=100, funded_by="merchant", merchant=demo_shop.merchant
        ),
        "platform_coupon": Coupon.objects.create(code="PLAT", name="platform", amount_fen=100),
        "own_tier": QuantityTier.objects.create(sku=own_sku, min_quantity=5, unit_price_fen=900),
        "their_tier": QuantityTier.objects.create(sku=their_sku, min_quantity=5, unit_price_fen=900),
        "first_order": FirstOrderOffer.objects.create(name="first", amount_fen=500),
    }


ADMIN = {
    "own_special": "flashspecial", "platform_special_on_own": "flashspecial", "their_special": "flashspecial",
    "own_spend": "spendtierpromotion", "platform_spend_on_own": "spendtierpromotion",
    "their_spend": "spendtierpromotion", "own_coupon": "coupon", "platform_coupon": "coupon",
    "own_tier": "quantitytier", "their_tier": "quantitytier", "first_order": "firstorderoffer",
}  # fmt: skip


def status_of(client, promos, key, view="change"):
    return client.get(reverse(f"admin:marketing_{ADMIN[key]}_{view}", args=[promos[key].pk])).status_code


def test_merchant_staff_open_only_their_own_merchant_funded_promotions(client, merchant_staff, promos):
    client.force_login(merchant_staff)
    visible = {key for key in ADMIN if status_of(client, promos, key) == 200}
    assert visible == {"own_special", "own_spend", "own_coupon", "own_tier"}
    for key in set(ADMIN) - visible:
        assert status_of(client, promos, key) in (403, 404)
        assert status_of(client, promos, key, "history") in (403, 404)
        if ADMIN[key] != "firstorderoffer":
            assert status_of(client, promos, key, "delete") in (403, 404)
    listing = client.get(reverse("admin:marketing_flashspecial_changelist"))
    assert {obj.pk for obj in listing.context["cl"].result_list} == {promos["own_special"].pk}
    listing = client.get(reverse("admin:marketing_spendtierpromotion_changelist"))
    assert {obj.pk for obj in listing.context["cl"].result_list} == {promos["own_spend"].pk}
    for model in ("firstorderoffer", "firstorderredemption", "referralprogram"):
        assert client.get(reverse(f"admin:marketing_{model}_changelist")).status_code == 403


def test_another_merchants_staff_see_none_of_them(client, other_merchant_staff, promos):
    client.force_login(other_merchant_staff)
    visible = {key for key in ADMIN if status_of(client, promos, key) == 200}
    assert visible == {"their_special", "their_spend", "their_tier"}


def test_operators_open_every_promotion(client, operator, promos):
    client.force_login(operator)
    assert {key for key in ADMIN if status_of(client, promos, key) == 200} == set(ADMIN)
    assert {key for key in ADMIN if status_of(client, promos, key, "history") == 200} == set(ADMIN)


def special_form(sku, **extra):
    return {
        "sku": str(sku.pk), "special_price_fen": "600", "starts_at_0": "2026-01-01", "starts_at_1": "00:00:00",
        "ends_at_0": "2030-01-01", "ends_at_1": "00:00:00", "quantity_cap": "3", "per_buyer_limit": "1",
        "funded_by": "platform", "active": "on",
        "redemptions-TOTAL_FORMS": "0", "redemptions-INITIAL_FORMS": "0", **extra,
    }  # fmt: skip


def test_merchant_staff_create_specials_only_on_their_own_skus_and_at_their_own_cost(client, merchant_staff, promos):
    client.force_login(merchant_staff)
    add = reverse("admin:marketing_flashspecial_add")
    refused = client.post(add, special_form(promos["their_sku"]))
    assert refused.status_code == 200 and "sku" in refused.context["adminform"].form.errors
    made = client.post(add, special_form(promos["own_sku"]))
    assert made.status_code == 302, made.content.decode()[:1500]
    special = FlashSpecial.objects.latest("pk")
    assert (special.sku_id, special.funded_by) == (promos["own_sku"].pk, "merchant")  # "platform" ignored


def test_merchant_staff_cannot_turn_their_own_promotion_into_anothers(client, merchant_staff, promos, demo_shop):
    client.force_login(merchant_staff)
    tier = promos["own_tier"]
    response = client.post(
        reverse("admin:marketing_quantitytier_change", args=[tier.pk]),
        {"sku": str(promos["their_sku"].pk), "min_quantity": "6", "unit_price_fen": "850"},
    )
    assert response.status_code == 200 and "sku" in response.context["adminform"].form.errors
    tier.refresh_from_db()
    assert tier.sku_id == promos["own_sku"].pk
    response = client.post(
        reverse("admin:marketing_spendtierpromotion_change", args=[promos["own_spend"].pk]),
        {
            "name": "own-spend", "merchant": str(demo_shop.other_merchant.pk), "starts_at_0": "2026-01-01",
            "starts_at_1": "00:00:00", "is_active": "on", "tiers-TOTAL_FORMS": "0", "tiers-INITIAL_FORMS": "0",
        },
    )  # fmt: skip
    assert response.status_code == 200 and "merchant" in response.context["adminform"].form.errors
    assert SpendTierPromotion.objects.get(pk=promos["own_spend"].pk).merchant == demo_shop.merchant


# -- the audit trail ---------------------------------------------------------------------------------------


def coupon_form(coupon, **changes):
    data = {
        "code": coupon.code, "name": coupon.name, "is_active": "on", "kind": coupon.kind,
        "amount_fen": str(coupon.amount_fen), "percent": str(coupon.percent),
        "min_spend_fen": str(coupon.min_spend_fen),
        "scope": coupon.scope, "per_user_limit": str(coupon.per_user_limit), "funded_by": coupon.funded_by,
        "merchant": str(coupon.merchant_id or ""),
    }  # fmt: skip
    data.update(changes)
    return data


def test_a_change_through_admin_is_recorded_with_actor_before_and_after(client, merchant_staff, promos):
    coupon = promos["own_coupon"]
    client.force_login(merchant_staff)
    url = reverse("admin:marketing_coupon_change", args=[coupon.pk])
    response = client.post(url, coupon_form(coupon, amount_fen="250", name="renamed"), REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 302, response.content.decode()[:1500]
    entry = LogEntry.objects.get_for_object(coupon).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == merchant_staff
    assert entry.changes_dict["amount_fen"] == ["100", "250"]
    assert entry.changes_dict["name"] == ["own", "renamed"]
    assert entry.remote_addr == "203.0.113.7"
    # Shown on the coupon's history page, to its merchant; another merchant's staff get a 404.
    history = client.get(reverse("admin:marketing_coupon_history", args=[coupon.pk]))
    assert history.status_code == 200 and "renamed" in history.content.decode()
    # The checkout's counter is not an admin change: not recorded.
    Coupon.objects.filter(pk=coupon.pk).update(used_count=1)
    coupon.refresh_from_db()
    coupon.used_count = 2
    coupon.save()
    assert LogEntry.objects.get_for_object(coupon).filter(action=LogEntry.Action.UPDATE).count() == 1


def test_create_and_delete_are_recorded_and_tiers_show_in_their_promotions_history(client, operator, promos):
    client.force_login(operator)
    promotion = promos["own_spend"]
    tier = SpendTier.objects.create(promotion=promotion, threshold_fen=10_000, discount_fen=1_000)
    tier.delete()
    special = promos["their_special"]
    response = client.post(reverse("admin:marketing_flashspecial_delete", args=[special.pk]), {"post": "yes"})
    assert response.status_code == 302
    deleted = LogEntry.objects.get(content_type__model="flashspecial", object_pk=str(special.pk), action=2)
    assert deleted.actor == operator
    history = client.get(reverse("admin:marketing_spendtierpromotion_history", args=[promotion.pk]))
    entries = list(history.context["log_entries"])
    assert {(e.content_type.model, e.action) for e in entries} == {
        ("spendtierpromotion", LogEntry.Action.CREATE),
        ("spendtier", LogEntry.Action.CREATE),
        ("spendtier", LogEntry.Action.DELETE),
    }


def test_the_log_is_searchable_read_only_and_operators_only(client, operator, merchant_staff, promos):
    coupon = promos["platform_coupon"]
    coupon.name = "spring sale"
    coupon.save()
    entry = LogEntry.objects.get_for_object(coupon).filter(action=LogEntry.Action.UPDATE).get()
    # Superusers too: no add, no change, no delete.
    client.force_login(operator)
    listing = client.get(reverse("admin:auditlog_logentry_changelist"), {"q": "spring sale"})
    assert listing.status_code == 200 and [e.pk for e in listing.context["cl"].result_list] == [entry.pk]
    assert "action" not in listing.context or not listing.context["action_form"]  # no bulk delete
    assert client.get(reverse("admin:auditlog_logentry_add")).status_code == 403
    assert client.post(reverse("admin:auditlog_logentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    detail = client.post(reverse("admin:auditlog_logentry_change", args=[entry.pk]), {"object_repr": "forged"})
    assert detail.status_code == 403
    entry.refresh_from_db()
    assert entry.object_repr != "forged"
    # The database refuses it as well.
    with pytest.raises(DatabaseError), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).update(object_repr="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).delete()
    client.force_login(merchant_staff)
    assert client.get(reverse("admin:auditlog_logentry_changelist")).status_code == 403


def test_campaigns_win_back_and_level_rates_are_in_the_audit_trail(client, operator, demo_shop):
    """The promotions added beside the back office are recorded too; a campaign's history shows its
    items' changes, and the share image the task redraws is not an operator's change."""
    from datetime import timedelta

    from django.utils import timezone

    from catalog.models import Sku
    from marketing.models import Campaign, CampaignItem, WinBackProgramme

    now = timezone.now()
    campaign = Campaign.objects.create(
        title="双十二", slug="d12", starts_at=now + timedelta(hours=1), ends_at=now + timedelta(days=1)
    )
    item = CampaignItem.objects.create(
        campaign=campaign, sku=Sku.objects.filter(product__merchant=demo_shop.merchant).first(), special_price_fen=4_000
    )
    item.special_price_fen = 3_900
    item.save()
    Campaign.objects.filter(pk=campaign.pk).update(share_key="drawn")
    campaign.refresh_from_db()
    campaign.save()  # only the share key differs from the last entry: nothing recorded
    programme = WinBackProgramme.objects.create(
        name="回归礼", idle_days=30, period_days=90, coupon=Coupon.objects.create(code="BACK", name="b", amount_fen=1)
    )
    item_update = LogEntry.objects.get_for_object(item).get(action=LogEntry.Action.UPDATE)
    assert item_update.changes_dict["special_price_fen"] == ["4000", "3900"]
    assert LogEntry.objects.get_for_object(campaign).filter(action=LogEntry.Action.UPDATE).count() == 0
    assert LogEntry.objects.get_for_object(programme).filter(action=LogEntry.Action.CREATE).count() == 1
    client.force_login(operator)
    history = client.get(reverse("admin:marketing_campaign_history", args=[campaign.pk]))
    assert history.status_code == 200 and "3900" in history.content.decode()
    assert client.get(reverse("admin:marketing_winbackprogramme_history", args=[programme.pk])).status_code == 200
