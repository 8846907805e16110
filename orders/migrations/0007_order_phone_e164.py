# Order phone numbers in E.164, so that a verified number claims the guest orders placed with it
# however the buyer typed it (issue 13); checkout stores E.164 from now on.

import phonenumbers
from django.conf import settings
from django.db import migrations, models


def to_e164(raw: str) -> str | None:
    text = (raw or "").strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, getattr(settings, "PHONENUMBER_DEFAULT_REGION", None) or "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_order_phones(apps, schema_editor):
    """Valid numbers are rewritten in E.164; anything else is left as typed (it is what the buyer
    gave, shown to the merchant; it can never match a verified number)."""
    Order = apps.get_model("orders", "Order")
    rows = Order.objects.exclude(phone="").exclude(phone__regex=r"^\+[1-9][0-9]{5,14}$")
    for pk, raw in rows.values_list("pk", "phone").iterator():
        value = to_e164(raw)
        if value and value != raw:
            Order.objects.filter(pk=pk).update(phone=value)


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0006_annual_membership'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(normalise_order_phones, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='order',
            index=models.Index(condition=models.Q(('buyer__isnull', True), models.Q(('phone', ''), _negated=True)), fields=['phone'], name='order_guest_phone'),
        ),
    ]
