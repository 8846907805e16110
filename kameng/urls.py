from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from django.views.i18n import set_language

import accounts.urls
import catalog.favourite_views
import marketing.invite_views
import marketing.wallet_views
import orders.leaderboard_views
import orders.membership_views
import payments.wallet_views
from kameng.health import healthz

# The user center, one namespace: accounts' pages, the wallet (payments), the membership and the
# spending leaderboard (orders), favourites (catalog), the invite page and the coupon wallet
# (marketing). kameng/urls.py is the composition root, the one place that may join apps which
# must not import each other.
user_center = (
    accounts.urls.urlpatterns
    + payments.wallet_views.urlpatterns
    + orders.membership_views.urlpatterns
    + catalog.favourite_views.urlpatterns
    + orders.leaderboard_views.urlpatterns
    + marketing.invite_views.urlpatterns
    + marketing.wallet_views.urlpatterns,
    accounts.urls.app_name,
)

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("me/", include(user_center)),
    path("orders/", include("orders.urls")),
    path("payments/", include("payments.urls")),
    path("promotions/", include("marketing.urls")),
    path("", include("catalog.shop_views")),
    path("", include("catalog.urls")),
]

# Styled error pages (templates/403.html, 404.html, 500.html); 429 "too many attempts" is also what
# allauth's limits answer with (it looks up ``handler429`` here).
handler429 = "kameng.errors.too_many_requests"

if settings.DEBUG:
    # Under gunicorn in DEBUG (make stack) Django serves static and media itself; production
    # static files come from WhiteNoise, media from the front proxy.
    urlpatterns += staticfiles_urlpatterns()
    urlpatterns += [path("dev/outbox/", include("kameng.outbox"))]  # e-mails of the embedded run
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
