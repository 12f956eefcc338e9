from django.urls import path

from .schema import schema
from .view import TenantGraphQLView

urlpatterns = [
    path("graphql", TenantGraphQLView.as_view(schema=schema, graphql_ide="graphiql"), name="graphql"),
]
