"""Language choice: staff pages follow the browser (or the switch); the platform API is English.

Staff pages speak the language the request asks for (the language switch's cookie, then
Accept-Language), Simplified Chinese when it names none of ours: that is Django's
LocaleMiddleware with LANGUAGE_CODE zh-hans. Platforms get English, machine-readable output
whatever their HTTP client sends, so /api/ (the API, its schema and docs) is always English.
"""

from __future__ import annotations

from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.utils import translation
from django.utils.translation import gettext_noop, ngettext_lazy

API_LANGUAGE = "en"


class LocaleMiddleware(DjangoLocaleMiddleware):
    """Django's LocaleMiddleware, except that the platform API always answers in English."""

    def process_request(self, request):
        if request.path_info.startswith("/api/"):
            translation.activate(API_LANGUAGE)
            request.LANGUAGE_CODE = translation.get_language()
            return
        super().process_request(request)

    def process_response(self, request, response):
        if request.path_info.startswith("/api/"):
            # No Vary: Accept-Language: the answer is the same whatever the client asks for.
            response.headers.setdefault("Content-Language", API_LANGUAGE)
            return response
        return super().process_response(request, response)


# Strings that other packages mark for translation but whose Simplified Chinese catalogue
# lacks them (Django 5.2's admin added a few after its zh_Hans catalogue was last updated;
# djangorestframework-api-key, django-axes and django-otp ship none). Listed here, makemessages carries them
# into locale/, whose catalogue Django consults before the packages' own.
THIRD_PARTY_MESSAGES = (
    # django.contrib.admin templates (app_list.html, login.html, change_form.html ...)
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop("Error:"),
    gettext_noop("Forgotten your login credentials?"),
    # rest_framework_api_key.models.AbstractAPIKey
    gettext_noop("A free-form name for the API key. Need not be unique. 50 characters max."),
    gettext_noop("If the API key is revoked, clients cannot use it anymore. (This cannot be undone.)"),
    gettext_noop("Expires"),
    gettext_noop("Once API key expires, clients cannot use it anymore."),
    gettext_noop("The API key has been revoked, which cannot be undone."),
    # django-axes (the sign-in lockout) and django-otp (the second step), which ship no
    # Chinese: the messages a member of staff may read while signing in.
    gettext_noop("Account locked: too many login attempts. Please try again later."),
    gettext_noop("Account locked: too many login attempts. Contact an admin to unlock your account."),
    gettext_noop("Please enter your OTP token."),
    gettext_noop("Please select a device."),
    gettext_noop("Invalid token. Please make sure you have entered it correctly."),
    gettext_noop("Verification of the token is currently disabled"),
    gettext_noop("Token generation is not allowed at this time"),
    ngettext_lazy(
        "Verification temporarily disabled because of %(failure_count)d failed "
        "attempt, please try again soon.",
        "Verification temporarily disabled because of %(failure_count)d failed "
        "attempts, please try again soon.",
        1,
    ),
)
