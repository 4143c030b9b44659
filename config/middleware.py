import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.messaging import chosen_language_of
from config import context, errors
from config.parsers import NUL, NUL_MESSAGE

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id (from a proxy or a client retry) is kept only if it is short and plain.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


class RequestContextMiddleware:
    """Gives every request an id, echoes it in the response and puts it in every log line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if _ACCEPTABLE_REQUEST_ID.fullmatch(offered) else context.new_request_id()
        request.request_id = request_id
        # Not reset on the way out: Django logs the response ("django.request") after the middleware
        # returns, and that line must carry the id too. The next request binds afresh.
        context.bind(request_id=request_id, actor_id=None, role="", provider_id=None)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        # Django logs a refused or failed request once this returns: that line names who acted too.
        request.acting = context.current()
        context.bind(actor_id=None, role="", provider_id=None)  # whoever acted, acted in this request only
        return response


class SessionActorMiddleware:
    """Names the signed-in user of a session (Django admin, pages) as the actor of the request.

    API requests carry no session: their JWT authentication binds the actor and role itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            context.bind(actor_id=user.pk, role="", provider_id=user.provider_id)
        return self.get_response(request)


class RefuseNulMiddleware:
    """Refuses a NUL character in the address, its query string (naming the parameter) or a cookie.

    PostgreSQL cannot store or compare text holding a NUL, so a search or filter would fail deep in
    the database; refusing at the edge covers every parameter, read by a filter or by hand."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path:
            return errors.bad_input(
                request, _("The address contains a NUL character. %(rule)s") % {"rule": NUL_MESSAGE}
            )
        named = sorted(
            {key for key, value in request.GET.lists() if NUL in key or any(NUL in v for v in value)}
        )
        if named:
            fields = {key.replace(NUL, "\\u0000"): [NUL_MESSAGE] for key in named}
            return errors.bad_input(
                request, _("Please correct: %(fields)s.") % {"fields": ", ".join(fields)}, fields=fields
            )
        if any(NUL in key or NUL in value for key, value in request.COOKIES.items()):
            # The session cookie is looked up in the database as it comes.
            return errors.bad_input(
                request, _("A cookie contains a NUL character. %(rule)s") % {"rule": NUL_MESSAGE}
            )
        return self.get_response(request)


class UserLanguageMiddleware:
    """Pages in the signed-in user's language when they chose one (a customer's is the language of
    their e-mails); otherwise LocaleMiddleware's choice from the browser's Accept-Language stands."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        language = chosen_language_of(user) if user is not None and user.is_authenticated else None
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        # The page's language switch is shown only where it decides: a chosen language outranks it.
        request.language_chosen = bool(language)
        return self.get_response(request)
