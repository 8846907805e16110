from django.contrib import admin

from catalog.models import Category, Product, Sku


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "sort_order", "is_active"]
    list_editable = ["sort_order", "is_active"]
    prepopulated_fields = {"slug": ("name",)}


class SkuInline(admin.TabularInline):
    model = Sku
    extra = 0
    fields = ["label", "face_value_fen", "price_fen", "cost_fen", "is_active", "low_stock_threshold", "sort_order"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "merchant", "category", "status", "delivery_mode", "is_featured"]
    list_filter = ["status", "delivery_mode", "category"]
    list_select_related = ["merchant", "category"]
    search_fields = ["title", "title_en", "slug"]
    prepopulated_fields = {"slug": ("title",)}
    inlines = [SkuInline]

# Import batches (upload, preview, progress, confirm) have their own module.
from catalog import admin_imports  # noqa: E402, F401
