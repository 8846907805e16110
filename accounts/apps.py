from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_roles(sender, using="default", **kwargs):
    from accounts.roles import sync_roles

    sync_roles(using=using)


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from accounts import loyalty_card, signals  # noqa: F401  (signals connects allauth's)

        loyalty_card.register()  # the points and level card of the user-center home

        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="accounts.sync_roles")
