from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = _("Marketing")

    def ready(self):
        from marketing import specials

        specials.connect()  # the flash_special pricing rule registers on import; the lifecycle receivers
