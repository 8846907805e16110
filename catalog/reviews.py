"""Reviews: the form, the product's stored average, the reads of the product page. Who may review
what (an item of one's own delivered order) is orders' (orders/reviews.py).

A signed-in buyer reviews an item of their own order once the order is delivered, once per item
(``Review.order_item`` is one-to-one). Merchant staff reply in admin (catalog/admin_reviews.py,
scoped to their products); operators hide. ``Product.rating_avg``/``rating_count`` count the shown
reviews only and are recomputed by one UPDATE after every save or delete of a review.
"""

from __future__ import annotations

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import Avg, Count, DecimalField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _

from catalog.models import Product, Review

REVIEWS_PER_PAGE = 10


class ReviewForm(forms.ModelForm):
    rating = forms.TypedChoiceField(
        label=_("Rating"), coerce=int, choices=[(n, n) for n in range(5, 0, -1)], widget=forms.RadioSelect
    )

    class Meta:
        model = Review
        fields = ["rating", "comment"]
        widgets = {"comment": forms.Textarea(attrs={"rows": 3, "maxlength": 1000})}
        labels = {"comment": _("Your review (optional)")}


class ReviewRefused(Exception):
    pass


def refresh_rating(product_id: int) -> None:
    shown = Review.objects.filter(product=OuterRef("pk"), is_hidden=False).order_by().values("product")
    Product.objects.filter(pk=product_id).update(
        rating_avg=Coalesce(
            Subquery(shown.annotate(a=Avg("rating")).values("a")),
            Value(0),
            output_field=DecimalField(max_digits=3, decimal_places=2),
        ),
        rating_count=Coalesce(Subquery(shown.annotate(n=Count("pk")).values("n")), Value(0)),
    )


def _on_review_changed(sender, instance: Review, raw=False, **kwargs) -> None:
    if not raw:
        refresh_rating(instance.product_id)


def connect() -> None:
    post_save.connect(_on_review_changed, sender=Review, dispatch_uid="catalog.review_rating")
    post_delete.connect(_on_review_changed, sender=Review, dispatch_uid="catalog.review_rating_deleted")


def mask_name(user) -> str:
    name = user.display_name if user is not None else ""
    if not name:
        return "***"
    return f"{name[0]}***{name[-1]}" if len(name) > 2 else f"{name[0]}***"


def product_reviews(*, product: Product, page_number) -> Page:
    """Shown reviews of ``product``, newest first, a page (one query; none without reviews), each with
    ``masked_name``."""
    reviews = (
        Review.objects.filter(product=product, is_hidden=False).select_related("buyer").order_by("-created_at", "-id")
    )
    paginator = Paginator(reviews if product.rating_count else [], REVIEWS_PER_PAGE)
    paginator.count = product.rating_count  # type: ignore[misc]  # the stored count of shown reviews: no COUNT query
    page = paginator.get_page(page_number)
    for review in page.object_list:
        review.masked_name = mask_name(review.buyer)
    return page
