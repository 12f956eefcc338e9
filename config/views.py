"""Service-level views: the health check, the OpenAPI document and its two browsers, the admin's login."""

from django.conf import settings
from django.contrib import admin
from django.db import DatabaseError, connection
from django.http import HttpResponse, JsonResponse
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request

from config import cache
from config.api.csv import JSONErrorsMixin
from config.api.throttling import login_refused


def healthz(request):
    """No auth. 200 when the database answers, 503 when it does not. With REDIS_URL, Redis too: while it
    does not answer the status is "degraded", still a 200: the API serves on (rate limits off, memberships
    from the database) and every instance shares that Redis, so a 503 would take them all out at once."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": f"unreachable: {exc.__class__.__name__}"}, status=503)
    body = {"status": "ok", "database": "ok", "vendor": connection.vendor}
    if settings.REDIS_URL:
        body["redis"] = cache.status()
        if body["redis"] != "ok":
            body["status"] = "degraded"
    return JsonResponse(body)


# drf-spectacular's views answer `?format=` as every API view does (config.api.csv.JSONErrorsMixin):
# an unknown format is a JSON 400 naming theirs (yaml and json; html for the browsers), not a 404.


class OpenAPIView(JSONErrorsMixin, SpectacularAPIView):
    pass


class SwaggerView(JSONErrorsMixin, SpectacularSwaggerSplitView):
    pass


class RedocView(JSONErrorsMixin, SpectacularRedocView):
    pass


def admin_login(request, **kwargs):
    """The admin's login, with the API's login limits (`THROTTLE_LOGIN_RATE` per username and per
    client address, counted together with `POST /api/v1/token`): without them a guesser tried
    staff passwords here at any rate (found by an outside sweep)."""
    if request.method == "POST":
        wait = login_refused(Request(request, parsers=[FormParser(), MultiPartParser()]))
        if wait is not None:
            return HttpResponse(
                f"Too many login attempts; try again in {wait} seconds.",
                status=429,
                content_type="text/plain; charset=utf-8",
                headers={"Retry-After": str(wait)},
            )
    return admin.site.login(request, **kwargs)
