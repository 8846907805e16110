"""Posting a review from the order page (the form is rendered by ``{% order_reviews %}``)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from catalog.reviews import ReviewForm, ReviewRefused
from orders import reviews


@login_required
@require_POST
def post_review(request, item_id: int):
    item = reviews.reviewable_item(user=request.user, item_id=item_id)
    if item is None:  # someone else's item, not delivered, or reviewed already: nothing to see
        raise Http404
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a rating from 1 to 5 stars."))
        return redirect(item.order)
    try:
        reviews.post_review(
            user=request.user, item_id=item.pk, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"]
        )
    except ReviewRefused as refused:
        raise Http404 from refused
    messages.success(request, _("Thank you, your review is posted."))
    return redirect(item.order)
