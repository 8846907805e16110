"""The back office of marketing: the "Operators" group with the permissions to run marketing, and the
audit trail's table made append-only in the database (kameng/audit.py).

Operators are recognised by ``accounts.operate_platform`` (accounts/roles.py: superusers, or staff
holding it): the group gives it, with every permission of marketing's models and a look at the audit
trail. Models added later get their permissions into the group after each ``migrate`` (the
post_migrate sync of accounts/apps.py), without another migration.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from kameng.appendonly import triggers

OPERATORS = "Operators"  # accounts.roles.OPERATORS; the display name is translated in docs and admin


def create_operators_group(apps, schema_editor):
    db = schema_editor.connection.alias
    # Permissions are normally created after migrate; a fresh database needs them now.
    for label in ("accounts", "marketing", "auditlog"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=db)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(db).get_or_create(name=OPERATORS)
    wanted = Permission.objects.using(db).filter(content_type__app_label="marketing") | Permission.objects.using(
        db
    ).filter(
        content_type__app_label="accounts", codename="operate_platform"
    ) | Permission.objects.using(db).filter(content_type__app_label="auditlog", codename="view_logentry")
    group.permissions.add(*wanted)


class Migration(migrations.Migration):
    dependencies = [
        ("marketing", "0007_coupon_wallet"),
        ("accounts", "0007_user_show_on_leaderboard"),
        ("auditlog", "0017_add_actor_email"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_operators_group, migrations.RunPython.noop),
        triggers(table="auditlog_logentry", prefix="auditlog_logentry"),
    ]
