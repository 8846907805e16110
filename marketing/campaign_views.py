"""The campaign page, its share image and the ended page (marketing/campaigns.py has the reads).

States: before the window the page shows what is coming and when it starts (the SKUs at their future
price, no buying); during it, the featured SKUs at the special price with a countdown; after it
the URL answers **410 Gone** with a short "this campaign has ended" page and the campaigns still
running, not the old content: links shared in chats keep landing somewhere useful (a bare 404 looks
like a broken shop), while crawlers and link previews learn the page is gone for good. A disabled
campaign answers 404 (withdrawn: as if it never existed). Operators may open any state (the admin's
preview link) and see a notice saying what shoppers get instead.
"""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import pgettext
from django.views.decorators.cache import cache_control

from accounts.roles import is_operator
from marketing import campaigns
from marketing.models import Campaign


def clock(seconds: int) -> str:
    """What static/js/countdown.js shows (with ``data-day-unit``), for the first paint and without
    JavaScript: "3天 04:05:06"."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    time = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}{day_unit()} {time}" if days else time


def day_unit() -> str:
    return pgettext("countdown", "d")


def campaign_page(request, slug: str):
    campaign = get_object_or_404(Campaign.objects.select_related("coupon"), slug=slug)
    now = timezone.now()
    state = campaign.state(now)
    preview = request.user.is_authenticated and is_operator(request.user)
    if state == Campaign.State.DISABLED and not preview:
        raise Http404
    if state == Campaign.State.ENDED and not preview:
        others = [c for c in campaigns.running(now) if c.pk != campaign.pk]
        return render(request, "marketing/campaign_ended.html", {"campaign": campaign, "others": others}, status=410)
    counting_to = campaign.starts_at if state == Campaign.State.SCHEDULED else campaign.ends_at
    seconds = max(0, int((counting_to - now).total_seconds()))
    return render(
        request,
        "marketing/campaign.html",
        {
            "campaign": campaign,
            "state": state,
            "preview": preview and state != Campaign.State.RUNNING,
            "cards": campaigns.cards(campaign),
            "seconds": seconds,
            "clock": clock(seconds),
            "day_unit": day_unit(),
            "counting_to": counting_to,
            "coupon": campaign.coupon,
            "page_url": campaigns.page_url(campaign),
            "share_url": campaigns.share_url(campaign),
        },
    )


@cache_control(public=True, max_age=300)
def campaign_share(request, slug: str):
    """The share image (PNG); drawn now when it is missing or stale (normally drawn after each save)."""
    campaign = get_object_or_404(Campaign, slug=slug, enabled=True)
    if campaigns.refresh_share(campaign.pk):
        campaign.refresh_from_db(fields=["share_image", "share_key"])
    return FileResponse(campaign.share_image.open("rb"), content_type="image/png")
