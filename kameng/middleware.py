"""Language selection: Chinese unless the visitor chose otherwise.

Django's LocaleMiddleware would follow the browser's Accept-Language header; Kameng is a Chinese
shop first, so the language is the one picked with the switcher (the ``django_language`` cookie
set by Django's ``set_language`` view) and otherwise ``LANGUAGE_CODE`` (zh-hans).
"""

from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_vary_headers


class LanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.supported = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request):
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        language = chosen if chosen in self.supported else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        patch_vary_headers(response, ("Cookie",))
        response.headers.setdefault("Content-Language", language)
        return response
