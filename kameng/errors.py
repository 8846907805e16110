"""The friendly "too many attempts" page (429), for allauth's limits (``handler429`` in kameng/urls.py)
and any view that refuses a request for going too fast."""

from django.shortcuts import render


def too_many_requests(request, exception=None):
    return render(request, "429.html", status=429)
