"""allauth raises RateLimited from inside its flows (a phone verification SMS over its limit, our
adapter's SMS limit) where no view catches it; answer with allauth's 429 page, not a 500."""

from allauth.core.exceptions import RateLimited
from allauth.core.ratelimit import respond_429


class RateLimitedMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, RateLimited):
            return respond_429(request)
        return None
