"""Middleware of the API's edges.

- `RequestLimitsMiddleware`: a body larger than `MAX_REQUEST_BYTES` is a 413 before anything
  reads it (the API's JSON and the admin's forms alike), and a URL (path and query string, as
  sent) longer than `MAX_URL_BYTES` is a 414. gunicorn.conf.py lets request lines well past that
  bound through, so that the client gets this JSON answer rather than gunicorn's HTML page. A NUL
  character in the admin's query string (a list filter's value, an autocomplete's term) is a 400
  naming the parameter: PostgreSQL refuses NUL in text, which was a 500 there (the API's filters
  refuse it themselves).
- `ApiErrorMiddleware`: no HTML error page under /api/: Django's own 404/405/500 pages become
  the JSON envelope, and an id in a path beyond the database's integers is a 404 (it can name
  nothing, and would overflow SQLite's integers).
"""

import logging
from http import HTTPStatus

from django.conf import settings
from django.http import Http404, HttpResponseBadRequest, JsonResponse

from .filters import MAX_DB_ID
from .throttling import rate_limit_headers

logger = logging.getLogger("api")

_MESSAGES = {404: "Not found.", 405: "Method not allowed.", 500: "Internal server error."}


def _json_error(status: int) -> JsonResponse:
    message = _MESSAGES.get(status) or HTTPStatus(status).phrase
    return JsonResponse({"message": message}, status=status)


def _content_length(request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _url_bytes(request) -> int:
    """The URL's length as the client sent it: gunicorn's RAW_URI, else path and query re-encoded."""
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if raw:
        return len(raw.encode("latin-1", "replace"))
    return len(request.get_full_path().encode("utf-8", "replace"))


class RequestLimitsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        url_limit = settings.MAX_URL_BYTES
        if _url_bytes(request) > url_limit:
            return JsonResponse(
                {
                    "message": f"URL too long: at most {url_limit} bytes of path and query (MAX_URL_BYTES).",
                    "errors": {"base": [f"At most {url_limit} bytes of path and query; send long lists in a body."]},
                },
                status=414,
            )
        limit = settings.MAX_REQUEST_BYTES
        if _content_length(request) > limit:
            return JsonResponse(
                {
                    "message": f"Request body too large: at most {limit} bytes (MAX_REQUEST_BYTES).",
                    "errors": {"base": [f"At most {limit} bytes."]},
                },
                status=413,
            )
        if request.path.startswith("/admin/"):
            for name, values in request.GET.lists():
                if any("\x00" in value for value in [name, *values]):
                    return HttpResponseBadRequest(
                        f"The query parameter {name!r} holds a NUL character (\\u0000), which no value may contain.",
                        content_type="text/plain; charset=utf-8",
                    )
        return self.get_response(request)


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith("/api/"):
            return response
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            replacement = _json_error(response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replacement[header] = response[header]
            response = replacement
        try:
            headers = rate_limit_headers(request)
        except Exception:  # never turn an answer (a JSON 500 included) into Django's HTML page
            logger.exception("rate-limit headers left out")
            headers = {}
        for name, value in headers.items():
            response.setdefault(name, value)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        for value in (*view_args, *view_kwargs.values()):
            digits = isinstance(value, str) and value.isascii() and value.isdigit()
            if digits and (len(value) > len(str(MAX_DB_ID)) or int(value) > MAX_DB_ID):
                if request.path.startswith("/api/"):
                    return _json_error(404)
                raise Http404("No such object.")
        return None

    def process_exception(self, request, exception):
        if request.path.startswith("/api/"):
            logger.exception("unhandled error under /api/", exc_info=exception)
            return _json_error(500)
        return None
