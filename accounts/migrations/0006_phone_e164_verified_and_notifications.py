# Phone numbers become E.164 (django-phonenumber-field), unique when set, with a verified flag; the
# notification settings of /me/settings/ (issue 13).

import phonenumber_field.modelfields
import phonenumbers
from django.conf import settings
from django.db import migrations, models


def to_e164(raw: str) -> str:
    """The stored text in E.164, or "" when it is not a valid number (it could never be verified or
    texted, and a wrong number must not block its real owner from adding it)."""
    text = (raw or "").strip()
    if not text:
        return ""
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, getattr(settings, "PHONENUMBER_DEFAULT_REGION", None) or "CN")
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_valid_number(number):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_phones(apps, schema_editor):
    """Keep every valid number, in E.164; when two accounts typed the same number the oldest account
    keeps it (none was verified: there was no verification before this)."""
    User = apps.get_model("accounts", "User")
    seen: set[str] = set()
    for pk, raw in User.objects.exclude(phone="").order_by("pk").values_list("pk", "phone").iterator():
        value = to_e164(raw)
        if value in seen:
            value = ""
        if value:
            seen.add(value)
        if value != raw:
            User.objects.filter(pk=pk).update(phone=value)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_points_and_member_levels'),
    ]

    operations = [
        migrations.RunPython(normalise_phones, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='user',
            name='phone',
            field=phonenumber_field.modelfields.PhoneNumberField(blank=True, max_length=128, region=None, verbose_name='mobile number'),
        ),
        migrations.AddField(
            model_name='user',
            name='phone_verified',
            field=models.BooleanField(default=False, verbose_name='mobile number verified'),
        ),
        migrations.AddConstraint(
            model_name='user',
            constraint=models.UniqueConstraint(condition=models.Q(('phone', ''), _negated=True), fields=('phone',), name='user_phone_unique_when_set'),
        ),
        migrations.AddField(
            model_name='user',
            name='notify_delivery_email',
            field=models.BooleanField(default=True, verbose_name='delivery by e-mail'),
        ),
        migrations.AddField(
            model_name='user',
            name='notify_delivery_sms',
            field=models.BooleanField(default=False, verbose_name='delivery by SMS'),
        ),
        migrations.AddField(
            model_name='user',
            name='notify_price_drops',
            field=models.BooleanField(default=False, verbose_name='price drops by e-mail'),
        ),
        migrations.AddField(
            model_name='user',
            name='notify_promotions_email',
            field=models.BooleanField(default=False, verbose_name='promotions by e-mail'),
        ),
        migrations.AddField(
            model_name='user',
            name='notify_promotions_sms',
            field=models.BooleanField(default=False, verbose_name='promotions by SMS'),
        ),
    ]
