"""The ASGI application: HTTP (Django) and the WebSocket event stream (Channels) on one port.

`manage.py runserver` serves it through daphne (in INSTALLED_APPS); production runs it under
`gunicorn config.asgi:application -k uvicorn_worker.UvicornWorker` or `daphne config.asgi:application`
(README, "Live event stream").
"""

import os

from django.core.asgi import get_asgi_application

import config

# Before the settings load: they turn persistent connections off under ASGI (config/__init__.py).
config.SERVED_BY_ASGI = True
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
http_application = get_asgi_application()  # sets Django up before the consumers are imported

# After Django's setup (above): the consumers import models.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

# GraphQL subscriptions (issue 10): graphql-transport-ws on the GraphQL path, beside the stream.
from config.graphql.routing import graphql_websocket_urlpatterns  # noqa: E402 - after Django's setup, like the line above
from stream.routing import websocket_urlpatterns  # noqa: E402

# No origin check: the stream authenticates with a bearer token the page must hold, never with a
# cookie a cross-site page could ride on.
application = ProtocolTypeRouter(
    {"http": http_application, "websocket": URLRouter([*websocket_urlpatterns, *graphql_websocket_urlpatterns])}
)
