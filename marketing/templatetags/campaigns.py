"""``{% campaign_banners %}``: the home page's banner slot, the campaigns running now, highest priority
first (catalog's template loads it: catalog sits below marketing and cannot ask it). It reads the
cached list of marketing/campaigns.py: no query in the steady state, nothing rendered when none runs."""

from __future__ import annotations

from django import template

from marketing import campaigns

register = template.Library()


@register.inclusion_tag("marketing/_campaign_banners.html")
def campaign_banners():
    return {"campaigns": campaigns.running()}
