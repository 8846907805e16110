from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = _("Catalog")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_save

        from catalog import favourite_views, favourites, stock, usercenter
        from catalog.models import Sku
        from catalog.signals import stock_changed

        # Low-stock alerts: every stock change queues a re-evaluation of the SKUs concerned.
        stock_changed.connect(stock.on_stock_changed, dispatch_uid="catalog.low_stock")
        # Favourites' notices: stock changes and saved SKUs (prices) queue a coalesced check.
        stock_changed.connect(favourites.on_catalog_changed, dispatch_uid="catalog.favourites")
        post_save.connect(favourites.on_sku_saved, sender=Sku, dispatch_uid="catalog.favourites_price")
        # A guest's favourite clicks are added once they sign in (or sign up).
        user_logged_in.connect(favourite_views.on_logged_in, dispatch_uid="catalog.favourites_pending")
        usercenter.register()  # the favourites card of the user-center home
        from catalog import reviews, search_signals

        search_signals.connect()  # search text rebuilt on product, SKU and category saves
        reviews.connect()  # products' average rating kept on every review change
