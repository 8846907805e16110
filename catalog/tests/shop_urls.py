"""The shop's URLs for the browser tests: the project's, plus media files (the live server runs with
DEBUG off, so Django does not serve uploads) and pages answering 429 and 500 to look at."""

from django.conf import settings
from django.urls import path, re_path
from django.views.static import serve

from kameng.errors import too_many_requests
from kameng.urls import handler429  # noqa: F401  (allauth reads handler429)
from kameng.urls import urlpatterns as project_urlpatterns


def media(request, path):
    return serve(request, path, document_root=settings.MEDIA_ROOT)


def fail(request):
    raise RuntimeError("a failure to show the 500 page")


urlpatterns = [
    re_path(r"^media/(?P<path>.*)$", media),
    path("test-429/", too_many_requests),
    path("test-500/", fail),
    *project_urlpatterns,
]
