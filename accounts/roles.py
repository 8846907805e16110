"""Who may do what in the back office.

* **Operators** (platform staff): superusers, or staff with ``accounts.operate_platform``
  (the "Operators" group has it). They see every merchant's data.
* **Merchant staff**: staff users linked to one or more merchants (``Merchant.users``), in the
  "Merchant staff" group. They see and change only their merchants' products, SKUs, codes,
  import batches — and later orders and settlements.

The "Operators" group is created by a data migration (marketing/migrations/0008_backoffice.py) and,
with "Merchant staff", kept in sync after every ``migrate`` (see accounts/apps.py): the permissions of
models added later (marketing's campaigns, withdrawals…) are added to it without another migration.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

OPERATORS = "Operators"
MERCHANT_STAFF = "Merchant staff"

# app_label -> model -> actions. Merchant staff never get delete on codes: codes are voided.
MERCHANT_STAFF_PERMISSIONS = {
    "catalog": {
        "product": ["view", "add", "change"],
        "productimage": ["view", "add", "change", "delete"],
        "buyerfield": ["view", "add", "change", "delete"],
        "sku": ["view", "add", "change"],
        "cardcode": ["view", "change"],
        "importbatch": ["view", "add", "change"],
        "stockalert": ["view"],
        "codeaccess": ["view"],
        "review": ["view", "change"],  # reply to reviews of their products (catalog/admin_reviews.py)
    },
    # Orders of their goods (actions and manual delivery need "change"); no payments permissions.
    "orders": {
        "order": ["view", "change"],
        "aftersalesrequest": ["view", "change"],
    },
    # Their own merchant-funded coupons (marketing/admin/coupons.py scopes them), and the uses.
    "marketing": {
        "coupon": ["view", "add", "change"],
        "couponredemption": ["view"],
        "flashspecial": ["view", "add", "change"],
        "specialredemption": ["view"],
        "quantitytier": ["view", "add", "change", "delete"],
        "spendtierpromotion": ["view", "add", "change", "delete"],
        "spendtier": ["view", "add", "change", "delete"],
    },
}
MERCHANT_STAFF_EXTRA = [("catalog", "reveal_cardcode")]


def is_operator(user) -> bool:
    return bool(user.is_active and (user.is_superuser or user.has_perm("accounts.operate_platform")))


def merchant_ids(user) -> list[int] | None:
    """The merchants whose data ``user`` may see in the back office; ``None`` means all (operator)."""
    if is_operator(user):
        return None
    if not (user.is_active and user.is_staff):
        return []
    cached = getattr(user, "_kameng_merchant_ids", None)
    if cached is None:
        cached = list(user.merchants.filter(status="active").values_list("pk", flat=True))
        user._kameng_merchant_ids = cached
    return cached


def sync_roles(*, using: str = "default") -> None:
    """Create the two groups and give them their permissions (idempotent)."""
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)

    def perms(pairs):
        found = []
        for app_label, codename in pairs:
            found.append(Permission.objects.using(using).get(content_type__app_label=app_label, codename=codename))
        return found

    staff_pairs = [
        (app_label, f"{action}_{model}")
        for app_label, models in MERCHANT_STAFF_PERMISSIONS.items()
        for model, actions in models.items()
        for action in actions
    ] + MERCHANT_STAFF_EXTRA
    staff, _ = Group.objects.using(using).get_or_create(name=MERCHANT_STAFF)
    staff.permissions.set(perms(staff_pairs))
    operators, _ = Group.objects.using(using).get_or_create(name=OPERATORS)
    operator_perms = Permission.objects.using(using).filter(
        content_type__app_label__in=["accounts", "catalog", "orders", "payments", "marketing"]
    )
    # The audit trail's entries (kameng/audit.py): operators read them; nobody changes them.
    audit = Permission.objects.using(using).filter(content_type__app_label="auditlog", codename="view_logentry")
    operators.permissions.set([*operator_perms, *audit])


def add_merchant_staff(*, merchant, user) -> None:
    """Link ``user`` to ``merchant`` as back-office staff."""
    sync_needed = not Group.objects.filter(name=MERCHANT_STAFF).exists()
    if sync_needed:
        sync_roles()
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    merchant.users.add(user)
    user.groups.add(Group.objects.get(name=MERCHANT_STAFF))
