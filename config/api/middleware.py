"""No HTML error page under /api/: Django's own 404/405/500 pages become the JSON envelope."""

import logging
from http import HTTPStatus

from django.http import JsonResponse

logger = logging.getLogger("api")

_MESSAGES = {404: "Not found.", 405: "Method not allowed.", 500: "Internal server error."}


def _json_error(status: int) -> JsonResponse:
    message = _MESSAGES.get(status) or HTTPStatus(status).phrase
    return JsonResponse({"message": message}, status=status)


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            replacement = _json_error(response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response

    def process_exception(self, request, exception):
        if request.path.startswith("/api/"):
            logger.exception("unhandled error under /api/", exc_info=exception)
            return _json_error(500)
        return None
