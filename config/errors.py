"""One error shape for the whole API.

Every refusal reads `{"detail": ..., "code": ..., "fields": {...}, "extra": {...}}`: `detail` says in
words what to do next, `code` is stable for programs, `fields` maps each invalid input to its
messages, `extra` carries the figures a business rule was checked against.
Business rules raise `DomainError` subclasses from services; this module turns them, DRF's own
exceptions and Django's into that shape.
"""

import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _
from django.views.defaults import bad_request as bad_request_page
from django.views.defaults import page_not_found, server_error
from django.views.defaults import permission_denied as permission_denied_page
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config import context


class DomainError(Exception):
    """A business rule refused the request. Subclasses set `code` and `status`."""

    code = "invalid"
    status = status.HTTP_400_BAD_REQUEST
    retry_after: int | None = None  # seconds, for a refusal that passes once a service is back (503)

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class NotFound(DomainError):
    code = "not_found"
    status = status.HTTP_404_NOT_FOUND


class Conflict(DomainError):
    code = "conflict"
    status = status.HTTP_409_CONFLICT


class Forbidden(DomainError):
    code = "permission_denied"
    status = status.HTTP_403_FORBIDDEN


class Unauthorized(DomainError):
    code = "not_authenticated"
    status = status.HTTP_401_UNAUTHORIZED


def error_body(detail: str, code: str, *, fields: dict | None = None, extra: dict | None = None) -> dict:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if fields:
        body["fields"] = fields
    if extra:
        body["extra"] = extra
    return body


def _field_errors(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {key: _messages(value) for key, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value: Any) -> list[str]:
    if isinstance(value, list):
        return [message for item in value for message in _messages(item)]
    if isinstance(value, dict):
        return [f"{key}: {message}" for key, item in value.items() for message in _messages(item)]
    return [str(value)]


def _validation_body(exc: exceptions.ValidationError) -> dict:
    fields = _field_errors(exc.detail)
    general = fields.pop("non_field_errors", [])
    if general and not fields:
        return error_body(" ".join(general), _first_code(exc.get_codes()))
    named = ", ".join(fields)
    detail = (
        " ".join([*general, _("Please correct: %(fields)s.") % {"fields": named}])
        if named
        else _("The request is not valid.")
    )
    return error_body(detail, "invalid", fields=fields)


def _first_code(codes: Any) -> str:
    while isinstance(codes, list | dict):
        codes = (
            next(iter(codes.values()), "invalid") if isinstance(codes, dict) else (codes or ["invalid"])[0]
        )
    return str(codes)


def api_exception_handler(exc: Exception, ctx: dict) -> Response | None:
    if isinstance(exc, DomainError):
        fields = {exc.field: [exc.detail]} if exc.field else None
        response = Response(
            error_body(exc.detail, exc.code, fields=fields, extra=exc.extra), status=exc.status
        )
        if exc.status == status.HTTP_401_UNAUTHORIZED:
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, ctx)
    if response is None:
        return None  # a bug: Django's handler500 answers, logged with the request id
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(exc)
    else:
        detail, code = exc.detail, _first_code(exc.get_codes())
        if isinstance(detail, dict):  # simplejwt nests its reason under "detail", "code" and "messages"
            detail, code = detail.get("detail", _("The request was refused.")), str(detail.get("code", code))
        response.data = error_body(str(detail), code)
    return response


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


# Django answers these itself, before or around DRF (an unknown address, a body over the upload
# limit, a refusal raised outside a DRF view, a crash): under /api/ in the API's shape, HTML elsewhere.


def bad_input(request: HttpRequest, detail: str, *, fields: dict | None = None) -> HttpResponse:
    """A 400 for input refused before any view runs (the middleware's checks)."""
    if _wants_json(request):
        return JsonResponse(error_body(detail, "invalid", fields=fields), status=400)
    return bad_request_page(request, Exception(detail))


def bad_request(request: HttpRequest, exception: Exception) -> Any:
    if not _wants_json(request):
        return bad_request_page(request, exception)
    if isinstance(exception, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = error_body(
            _("The request is too large: send at most %(limit)s bytes of data (files aside) at a time.")
            % {"limit": f"{limit:,}"},
            "too_large",
            extra={"limitBytes": limit},
        )
        return JsonResponse(body, status=413)
    return JsonResponse(error_body(_("The request could not be understood."), "bad_request"), status=400)


def permission_denied(request: HttpRequest, exception: Exception) -> Any:
    if _wants_json(request):
        body = error_body(_("You may not do this in your current role."), "permission_denied")
        return JsonResponse(body, status=403)
    return permission_denied_page(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> Any:
    if _wants_json(request):
        return JsonResponse(error_body(_("No such address in the API."), "not_found"), status=404)
    return page_not_found(request, exception)


# Seconds a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER = 30


def internal_error(request: HttpRequest) -> Any:
    # Django calls this while handling the exception, so the exception is the one being handled.
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        return _database_unavailable(request)
    if _wants_json(request):
        body = error_body(
            _("Something went wrong on our side. Quote the request id if you report it."),
            "server_error",
            extra={"requestId": context.current().request_id or getattr(request, "request_id", "")},
        )
        return JsonResponse(body, status=500)
    return server_error(request)


def _database_unavailable(request: HttpRequest) -> HttpResponse:
    """The database cannot be reached (down, restarting, refusing connections): a 503 to retry, not a bug.

    The page is rendered without a request context: its context processors would need the database."""
    if _wants_json(request):
        body = error_body(
            _(
                "The service cannot reach its database right now. Nothing was saved: try again in "
                "%(seconds)s seconds, and tell the administrator if it lasts."
            )
            % {"seconds": DATABASE_RETRY_AFTER},
            "database_unavailable",
            extra={"requestId": context.current().request_id or getattr(request, "request_id", "")},
        )
        response: HttpResponse = JsonResponse(body, status=503)
    else:
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response
