"""Chinese by default for the pages, whatever language the browser advertises.

Django's LocaleMiddleware picks the language from the browser's Accept-Language header,
so an English-configured browser would never see the default Chinese UI. Pages use the
language the user chose with the switch (the language cookie) or LANGUAGE_CODE. The REST
API under /api/ keeps Django's usual negotiation, except that a client sending no
Accept-Language (curl, a script, a code generator reading the schema) gets English rather
than LANGUAGE_CODE; the pages' own calls always send the page's language.
"""

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class PageLanguageMiddleware(LocaleMiddleware):
    def process_request(self, request):
        if request.path_info.startswith("/api/"):
            if not request.META.get("HTTP_ACCEPT_LANGUAGE"):
                translation.activate("en")
                request.LANGUAGE_CODE = translation.get_language()
                return None
            return super().process_request(request)
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        supported = {code for code, _ in settings.LANGUAGES}
        language = chosen if chosen in supported else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
