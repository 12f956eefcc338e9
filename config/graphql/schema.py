"""The schema, assembled from each app's `graphql.py` like config/urls.py assembles the REST routes.

`schema.graphql` at the repository root is this schema in SDL: `manage.py export_graphql_schema`
writes it, and a test fails when the code and the file disagree.
"""

from __future__ import annotations

import strawberry
from strawberry.tools import merge_types
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

from .limits import ListItemsLimit, limit_extensions
from .scalars import SCALAR_OVERRIDES
from .ws import OneTransportPerOperation

QUERY_MODULES = [tenancy, events, contracts, slas, workorders, breaches, ledger, notifications]
# Issue 10's second round: the resources the REST API had and GraphQL lacked.
QUERY_MODULES += [signing, visits, billing, reports]
MUTATION_MODULES = [m for m in QUERY_MODULES if hasattr(m, "Mutation")]

Query = merge_types("Query", tuple(m.Query for m in QUERY_MODULES))
Mutation = merge_types("Mutation", tuple(m.Mutation for m in MUTATION_MODULES)) if MUTATION_MODULES else None

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=stream.Subscription,  # over the WebSocket only (config/graphql/ws.py)
    extensions=[DjangoOptimizerExtension, *limit_extensions(), OneTransportPerOperation],
    scalar_overrides=SCALAR_OVERRIDES,  # instants written as REST writes them (UTC, Z)
    execution_context_class=ListItemsLimit,  # at most 10,000 objects in an operation's lists
)
