from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = _("Catalog")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_save

        from catalog import favourite_views, favourites, images, stock, usercenter
        from catalog.models import Product, ProductImage, Sku
        from catalog.signals import stock_changed

        # Low-stock alerts: every stock change queues a re-evaluation of the SKUs concerned.
        stock_changed.connect(stock.on_stock_changed, dispatch_uid="catalog.low_stock")
        # Favourites' notices: stock changes and saved SKUs (prices) queue a coalesced check.
        stock_changed.connect(favourites.on_catalog_changed, dispatch_uid="catalog.favourites")
        post_save.connect(favourites.on_sku_saved, sender=Sku, dispatch_uid="catalog.favourites_price")
        # A guest's favourite clicks are added once they sign in (or sign up).
        user_logged_in.connect(favourite_views.on_logged_in, dispatch_uid="catalog.favourites_pending")
        # The home page's cache is dropped on the changes it shows (catalog/home.py).
        from catalog import home

        stock_changed.connect(home.on_stock_changed, dispatch_uid="catalog.home_stock")
        home.connect()

        # Product pictures: thumbnails written once, when the picture is saved (catalog/images.py).
        post_save.connect(images.on_image_saved, sender=Product, dispatch_uid="catalog.product_image")
        post_save.connect(images.on_image_saved, sender=ProductImage, dispatch_uid="catalog.gallery_image")
        usercenter.register()  # the favourites card of the user-center home

        # Shop settings and footer pages: one cached snapshot, dropped on every change (catalog/shop.py).
        from django.db.models.signals import post_delete

        from catalog import shop
        from catalog.models import FooterPage, ShopSettings

        for model in (ShopSettings, FooterPage):
            post_save.connect(shop.forget, sender=model, dispatch_uid=f"catalog.shop.{model.__name__}.save")
            post_delete.connect(shop.forget, sender=model, dispatch_uid=f"catalog.shop.{model.__name__}.delete")

        from catalog import reviews, search_signals

        search_signals.connect()  # search text rebuilt on product, SKU and category saves
        reviews.connect()  # products' average rating kept on every review change
