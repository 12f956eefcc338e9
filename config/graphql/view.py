"""`POST /api/graphql`: authenticated like REST (the same JWT class), scoped to the caller's org.

The view authenticates with `tenancy.auth.TenantJWTAuthentication` before anything runs: no or
a bad token is a 401 with the JSON envelope, exactly as under /api/v1/. Each request then counts
against the caller's REST rate limit (`UserThrottle`): past it, REST's 429 with `Retry-After`. The tenancy context
(organization, role) is put on the request for the types' `get_queryset` and the mutations.
A browser asking for HTML gets GraphiQL (its assets served locally); it sends the token itself.
"""

from __future__ import annotations

import math
import pathlib

from cross_web import HTTPException  # what strawberry's views raise (its own dependency)
from django.http import HttpResponse, JsonResponse
from django.templatetags.static import static
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import AuthenticationFailed, Throttled
from strawberry.django.views import GraphQLView

from config.api import parsers
from config.api.exceptions import BadRequest
from config.api.filters import single_values
from config.api.throttling import UserThrottle
from tenancy.auth import TenantJWTAuthentication

from .errors import format_error

# GraphiQL's page; its assets are this service's static files (config/graphql/static/graphiql).
GRAPHIQL_PAGE = pathlib.Path(__file__).with_name("graphiql.html")


def _unauthorized(message: str) -> JsonResponse:
    response = JsonResponse({"message": message}, status=401)
    response["WWW-Authenticate"] = TenantJWTAuthentication().authenticate_header(None)
    return response


def _throttled(wait: float) -> JsonResponse:
    """REST's 429 (config.api.exceptions): DRF's words and `Retry-After` in whole seconds."""
    response = JsonResponse({"message": str(Throttled(wait).detail)}, status=429)
    response["Retry-After"] = str(math.ceil(wait))
    return response


def _is_body(data, request) -> bool:
    body = request.body
    return data == body or (isinstance(data, str) and data.encode() == body)


@method_decorator(csrf_exempt, name="dispatch")  # bearer tokens, not cookies: no CSRF exposure
class TenantGraphQLView(GraphQLView):
    def dispatch(self, request, *args, **kwargs):
        if request.method == "GET" and self.should_render_graphql_ide(request):
            return super().dispatch(request, *args, **kwargs)
        try:
            authenticated = TenantJWTAuthentication().authenticate(request)
        except AuthenticationFailed as exc:
            return _unauthorized(str(exc.detail))
        if authenticated is None:
            return _unauthorized("Authentication credentials were not provided.")
        request.user, request.tenant = authenticated
        throttle = UserThrottle()
        if not throttle.allow_request(request, self):
            # The REST limit, on the same count (THROTTLE_USER_RATE): GraphQL's requests were never
            # counted, so a caller held back under /api/v1/ could go on querying here without end.
            return _throttled(throttle.wait())
        try:
            # A repeated query parameter (a GET's `query`, `variables`, `operationName`): strawberry
            # would read the last; refused as under /api/v1/.
            single_values(request.GET, lists=False)
        except BadRequest as exc:
            return JsonResponse({"message": exc.message, "errors": exc.errors}, status=400)
        try:
            return self.run(request=request)
        except HTTPException as exc:
            # Strawberry's reason ("Unknown operation named 'Nope'.") as the API's JSON error: its
            # own dispatch answers in plain text, which ApiErrorMiddleware replaced by "Bad Request".
            return JsonResponse({"message": exc.reason}, status=exc.status_code)
        except parsers.MalformedJSON as exc:
            # REST's words for REST's check (StrictJSONParser); over GET the JSON is `variables`.
            where = "query string" if request.method == "GET" else "request body"
            return JsonResponse({"message": f"Malformed {where}: JSON parse error - {exc}"}, status=400)

    def decode_json(self, data):
        # Strawberry's plain json.loads let a body ~1,000 deep exhaust the recursion: a 500.
        parsed = parsers.loads(data)
        # A POST's body that is JSON but no operation (`null`, `1`, `"text"`) was a 500: strawberry
        # called `.get` on it. Its other JSON (a GET's `variables`, a multipart part) keeps
        # strawberry's own checks and words; `self.request` is this request (one view per request).
        if not isinstance(parsed, dict | list) and self.request.method == "POST" and _is_body(data, self.request):
            raise HTTPException(400, "The GraphQL request body must be a JSON object (an operation).")
        return parsed

    def should_render_graphql_ide(self, request) -> bool:
        return request.method == "GET" and "text/html" in request.headers.get("Accept", "") and bool(self.graphql_ide)

    def render_graphql_ide(self, request) -> HttpResponse:
        # Not strawberry's page: that one loads GraphiQL and React from a CDN.
        page = GRAPHIQL_PAGE.read_text().replace("__STATIC__", static(""))
        return HttpResponse(page, content_type="text/html; charset=utf-8")

    def process_result(self, request, result):
        data = super().process_result(request, result)
        if result.errors:
            data["errors"] = [format_error(error).formatted for error in result.errors]
        return data
