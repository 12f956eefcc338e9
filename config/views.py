"""Service-level views: the health check."""

from django.db import DatabaseError, connection
from django.http import JsonResponse


def healthz(request):
    """No auth. 200 when the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": f"unreachable: {exc.__class__.__name__}"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok", "vendor": connection.vendor})
