"""Settings overlay for measuring with production settings (DEBUG off) through the sandbox provider.

The shop offers the sandbox only with DEBUG on; a load run with DEBUG off still needs a payment
provider that confirms without a gateway. Used by ``bench/checkout.py --production`` and
``bench/profile_buyer.py --production``; never by the shop itself.
"""

from kameng.settings import *  # noqa: F403

PAYMENT_SANDBOX_ENABLED = True
# Production settings require a mail server; the bench measures with the console backend, as before.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
