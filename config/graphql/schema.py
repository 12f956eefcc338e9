"""The schema, assembled from each app's `graphql.py` like config/urls.py assembles the REST routes.

`schema.graphql` at the repository root is this schema in SDL: `manage.py export_graphql_schema`
writes it, and a test fails when the code and the file disagree.
"""

from __future__ import annotations

import strawberry
from strawberry.tools import merge_types
from strawberry.utils.logging import StrawberryLogger
from strawberry_django.optimizer import DjangoOptimizerExtension

from billing import graphql as billing
from breaches import graphql as breaches
from contracts import graphql as contracts
from events import graphql as events
from ledger import graphql as ledger
from notifications import graphql as notifications
from reports import graphql as reports
from signing import graphql as signing
from slas import graphql as slas
from stream import graphql as stream
from tenancy import graphql as tenancy
from visits import graphql as visits
from workorders import graphql as workorders

from .errors import is_client_error
from .limits import ListItemsLimit, limit_extensions
from .scalars import SCALAR_OVERRIDES
from .ws import OneTransportPerOperation

QUERY_MODULES = [tenancy, events, contracts, slas, workorders, breaches, ledger, notifications]
# Issue 10's second round: the resources the REST API had and GraphQL lacked.
QUERY_MODULES += [signing, visits, billing, reports]
MUTATION_MODULES = [m for m in QUERY_MODULES if hasattr(m, "Mutation")]

Query = merge_types("Query", tuple(m.Query for m in QUERY_MODULES))
Mutation = merge_types("Mutation", tuple(m.Mutation for m in MUTATION_MODULES)) if MUTATION_MODULES else None


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        """Strawberry logs each error at ERROR with its traceback. A client's errors are not the
        server's: one WARNING line for the operation. A query past the list limit raised an error
        for every list reached after it, each logged with its traceback (68 tracebacks, 93 KB for
        one request, found by an outside tester)."""
        client = [error for error in errors if is_client_error(error)]
        if client:
            more = f" (and {len(client) - 1} more)" if len(client) > 1 else ""
            StrawberryLogger.logger.warning("GraphQL client error: %s%s", client[0].message, more)
        super().process_errors([error for error in errors if not is_client_error(error)], execution_context)


schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=stream.Subscription,  # over the WebSocket only (config/graphql/ws.py)
    extensions=[DjangoOptimizerExtension, *limit_extensions(), OneTransportPerOperation],
    scalar_overrides=SCALAR_OVERRIDES,  # instants written as REST writes them (UTC, Z)
    execution_context_class=ListItemsLimit,  # at most 10,000 objects in an operation's lists
)
