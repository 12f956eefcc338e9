"""The GraphQL WebSocket route (config/asgi.py): subscriptions at the path of `POST /api/graphql`."""

from django.urls import re_path

from .schema import schema
from .ws import TenantGraphQLWSConsumer

graphql_websocket_urlpatterns = [re_path(r"^api/graphql/?$", TenantGraphQLWSConsumer.as_asgi(schema=schema))]
