"""Error catalogue and the one DRF exception handler.

Codes: E1xx annotation, E2xx inference, E3xx learner. Published codes are never reworded;
add new ones instead. Every API error body has the same shape:
``{"error": {"code": "E201", "message": "...", "detail": ...}}``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler


class Errors:
    """The catalogue's messages, in the language of the request (Accept-Language)."""

    E101 = _("invalid spans")
    E102 = _(
        "stale revision: the annotation was saved again since you loaded it (by someone else, "
        "or by you elsewhere)"
    )
    E103 = _("malformed import file")
    E104 = _("label still used by annotations: it cannot be removed or renamed")
    E105 = _("queue item is not assigned to you")
    E106 = _("invalid label schema")
    E107 = _("a project must keep at least one admin")
    E108 = _("the project is training: delete it once the run has ended")
    E109 = _("the document has a validated answer: save your changes instead of a draft")
    E201 = _("no model is ready to serve this request")
    E202 = _("model bundle failed verification")
    E203 = _("invalid predict request")
    E204 = _("the task broker is unreachable; nothing was enqueued")
    E301 = _("training failed")
    E302 = _("not enough labelled data to train")
    E303 = _("the training run was cancelled")
    E304 = _("the training run has already ended")


class CodedAPIException(APIException):
    """An API error carrying a catalogue code."""

    def __init__(self, code: str, detail=None, status_code: int = status.HTTP_400_BAD_REQUEST):
        self.code = code
        self.status_code = status_code
        super().__init__(detail=detail or getattr(Errors, code), code=code)


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"the request body is larger than {limit} bytes (NERLOOP_MAX_BODY_BYTES)")


def api_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):  # Django's, which would answer with an HTML page
        exc = BodyTooLarge()
    elif isinstance(exc, Http404):  # as DRF's handler does, but here, so the code is kept
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "code", None) or getattr(exc, "default_code", "error")
    message = getattr(Errors, str(code), None)
    detail = response.data
    if isinstance(detail, dict) and set(detail) == {"detail"}:
        detail = detail["detail"]
    if message is None:
        message = detail if isinstance(detail, str) else _first_problem(detail)
    body = {"error": {"code": str(code), "message": str(message), "detail": detail}}
    return Response(body, status=response.status_code, headers=response.headers)


def _first_problem(detail) -> str:
    """``field: what is wrong`` for the first complaint of a validation error's detail."""
    path = []
    while isinstance(detail, dict | list) and detail:
        if isinstance(detail, dict):
            key, detail = next(iter(detail.items()))
            if key not in ("non_field_errors", "detail"):
                path.append(str(key))
        else:
            detail = detail[0]
    where = ".".join(path)
    return f"{where}: {detail}" if where else str(detail) or "request failed"


@csrf_exempt  # it changes nothing; a token client's POST must learn the URL is wrong, not CSRF
def api_not_found(request):
    """Any URL under /api/ that names no endpoint: the API's JSON error, not an HTML page."""
    message = f"no API endpoint at {request.path}; see /api/docs/"
    body = {"error": {"code": "not_found", "message": message, "detail": message}}
    return JsonResponse(body, status=404)


def server_error(request, *args, **kwargs):
    """Django's handler500: an unexpected failure (the database gone, a bug) answers an API
    client in the API's JSON shape, and a browser with the HTML page."""
    if request.path.startswith("/api/"):
        message = str(_("the server failed; try again, and tell its admin if it goes on"))
        body = {"error": {"code": "server_error", "message": message, "detail": None}}
        return JsonResponse(body, status=500)
    from django.views.defaults import server_error as html_server_error

    return html_server_error(request, *args, **kwargs)
