from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = _("Catalog")

    def ready(self) -> None:
        from catalog import stock
        from catalog.signals import stock_changed

        # Low-stock alerts: every stock change queues a re-evaluation of the SKUs concerned.
        stock_changed.connect(stock.on_stock_changed, dispatch_uid="catalog.low_stock")
