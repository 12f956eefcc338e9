"""gunicorn's settings for this service, read by `gunicorn config.wsgi` (or `config.asgi`) started
from the repository's root (gunicorn loads ./gunicorn.conf.py by default; elsewhere pass
`-c /path/to/gunicorn.conf.py`). Used by the fuzzer (tests/fuzz/run.py) and in production.

Only the limits of the HTTP head and the trust in proxy headers are set here; workers, binding and
logging stay on the command line. gunicorn refuses a request line over `limit_request_line` with its
own HTML page, before Django runs: the default (4094 bytes) is below the service's own bound
(MAX_URL_BYTES, 8000 by default), so a long URL got HTML where every other error is JSON. At
gunicorn's maximum (8190) any URL the service can refuse reaches RequestLimitsMiddleware, which
answers a JSON 414. Keep MAX_URL_BYTES below this line length minus the method and protocol (about
20 bytes).
"""

from django.core.exceptions import ImproperlyConfigured
from gunicorn.http.message import MAX_REQUEST_LINE

from config.environment import env_int

# A URL the service would still take must never meet gunicorn's HTML refusal first; and gunicorn
# quietly cuts a longer limit to its maximum (MAX_REQUEST_LINE, 8190), and takes 0 or less as
# unlimited or that maximum, which a slow client could abuse: so only the lengths in between.
_HEAD_ROOM = len("OPTIONS  HTTP/1.1")
try:
    _max_url_bytes = env_int("MAX_URL_BYTES", 8000)  # its other bounds are the settings' to check
    limit_request_line = env_int("GUNICORN_LIMIT_REQUEST_LINE", MAX_REQUEST_LINE, minimum=1, maximum=MAX_REQUEST_LINE)
except ImproperlyConfigured as exc:  # one line at the start, not a traceback
    raise SystemExit(f"gunicorn.conf.py: {exc}") from None
if limit_request_line < _max_url_bytes + _HEAD_ROOM:
    raise SystemExit(
        f"gunicorn.conf.py: limit_request_line must exceed MAX_URL_BYTES by the method and protocol: "
        f"GUNICORN_LIMIT_REQUEST_LINE {limit_request_line} is below MAX_URL_BYTES {_max_url_bytes} + {_HEAD_ROOM}"
    )

# Proxy headers are Django's to judge (NUM_PROXIES, config/settings.py), not the server's: by default
# gunicorn trusts X-Forwarded-Proto (and the uvicorn worker X-Forwarded-For, its REMOTE_ADDR) from
# 127.0.0.1, where the README's own proxy connects from, so a client's header behind it set https or
# the rate limits' address, whatever NUM_PROXIES said (found by an outside tester).
forwarded_allow_ips = ""
secure_scheme_headers = {}


def post_worker_init(worker):
    """Freeze what the worker has loaded out of the garbage collector's sight (issue 15).

    Django, DRF and the project's modules are hundreds of thousands of objects that live as long
    as the worker; every full collection walked them all, and a list page allocates enough to set
    off collections (a work-order page: about 40% of its time in-process). The URLconf is loaded
    first so that the views, serializers and models it reaches are frozen too.
    """
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports every view module the URLs reach)
    gc.collect()
    gc.freeze()
