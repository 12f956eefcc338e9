"""Service-level views: the health check, and the OpenAPI document and its two browsers."""

from django.db import DatabaseError, connection
from django.http import JsonResponse
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from config.api.csv import JSONErrorsMixin


def healthz(request):
    """No auth. 200 when the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": f"unreachable: {exc.__class__.__name__}"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok", "vendor": connection.vendor})


# drf-spectacular's views answer `?format=` as every API view does (config.api.csv.JSONErrorsMixin):
# an unknown format is a JSON 400 naming theirs (yaml and json; html for the browsers), not a 404.


class OpenAPIView(JSONErrorsMixin, SpectacularAPIView):
    pass


class SwaggerView(JSONErrorsMixin, SpectacularSwaggerSplitView):
    pass


class RedocView(JSONErrorsMixin, SpectacularRedocView):
    pass
