"""Abuse limits, checked before anything runs: depth 10, aliases 15, tokens 2,000, page size 100,
one place of the answer selected at most 30 times;
and the GraphQL spec's rule that a document of several operations names the one to run. While it
runs: at most 10,000 objects in the lists of one operation (`ListItemsLimit`).

Depth, aliases and tokens are strawberry's own validation rules; the page size is checked here,
on the parsed document with its variables, so `pagination: {limit: 1000}` is refused rather than
quietly clamped, and so is a negative `offset`.
"""

from __future__ import annotations

import asyncio

from django.db.models import QuerySet
from graphql import (
    DocumentNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    VariableNode,
    get_nullable_type,
    is_composite_type,
    visit,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.language import ArgumentNode, Visitor
from graphql.utilities import value_from_ast_untyped
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.extensions.query_depth_limiter import IgnoreContext
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.graphql import OperationType

from .base import MAX_PAGE_SIZE

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000
MAX_LIST_ITEMS = 10_000
# Times one place of the answer (`contracts.results.id`) may be selected, through fragments too.
MAX_SAME_FIELD = 30
# Fields a document may select once its fragments are spread where they are used.
MAX_SPREAD_FIELDS = 20_000
# Exempt from the depth limit, by the field's own name (an alias is the client's to choose).
INTROSPECTION_FIELDS = frozenset({"__schema", "__type", "__typename"})


class _PaginationVisitor(Visitor):
    def __init__(self, variables: dict):
        super().__init__()
        self.variables = variables
        self.refused: list[str] = []

    def enter_argument(self, node: ArgumentNode, *args):
        if node.name.value != "pagination":
            return
        value = node.value
        if isinstance(value, VariableNode):
            pagination = self.variables.get(value.name.value) or {}
        elif isinstance(value, ObjectValueNode):
            pagination = value_from_ast_untyped(value, self.variables) or {}
        else:
            return
        if not isinstance(pagination, dict):
            return
        limit, offset = pagination.get("limit"), pagination.get("offset")
        if isinstance(limit, int) and (limit > MAX_PAGE_SIZE or limit < 0):
            self.refused.append(f"pagination.limit must be between 0 and {MAX_PAGE_SIZE}; got {limit}.")
        # A negative offset failed deep in Django's slicing (INTERNAL) on root lists and was
        # ignored on nested ones: refused up front like a bad limit (REST: `?page=` from 1).
        if isinstance(offset, int) and offset < 0:
            self.refused.append(f"pagination.offset must be at least 0; got {offset}.")


class PageSizeLimiter(SchemaExtension):
    def on_validate(self):
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            visitor = _PaginationVisitor(context.variables or {})
            visit(context.graphql_document, visitor)
            if visitor.refused:
                context.pre_execution_errors = [GraphQLError(visitor.refused[0], extensions={"code": "BAD_REQUEST"})]
        yield


# The longest number literal a query may hold: a BigInt is 20 characters; Python refuses to read an
# integer of more than 4,300 digits (ValueError), and strawberry's depth limiter and the page size
# check read every literal of the document with `int()` before any type is checked.
MAX_NUMBER_LITERAL = 100


class NumberLiteralLimit(SchemaExtension):
    """A number literal of more than `MAX_NUMBER_LITERAL` characters is a BAD_REQUEST, before the
    other checks read it: `{ contract(id: 999...9) }` with 5,000 digits was an INTERNAL error
    (regression sweep of the eleventh round; a variable's value was already refused by its type)."""

    def on_validate(self):
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            too_long = []

            class Numbers(Visitor):
                def enter(self, node, *args):
                    if isinstance(node, (IntValueNode, FloatValueNode)) and len(node.value) > MAX_NUMBER_LITERAL:
                        too_long.append(node)
                        return self.BREAK
                    return None

            visit(context.graphql_document, Numbers())
            if too_long:
                context.pre_execution_errors = [
                    GraphQLError(
                        f"A number literal of {len(too_long[0].value)} characters is out of range: "
                        f"at most {MAX_NUMBER_LITERAL}.",
                        nodes=too_long[:1],
                        extensions={"code": "BAD_REQUEST"},
                    )
                ]
        yield


class _Repeated(Exception):
    def __init__(self, message: str):
        self.message = message


def _count_fields(document: DocumentNode) -> None:
    """Each place of the answer (a response path) counted as often as the document selects it, its
    fragments spread where they are used (each once per selection, as graphql-core collects them);
    `_Repeated` past `MAX_SAME_FIELD` at one place or `MAX_SPREAD_FIELDS` in all."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    counts: dict[str, int] = {}
    total = 0

    def walk(selection_set, path: str, spread: set[str], stack: tuple[str, ...]) -> None:
        nonlocal total
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = (selection.alias or selection.name).value
                place = f"{path}.{name}" if path else name
                counts[place] = counts.get(place, 0) + 1
                total += 1
                if counts[place] > MAX_SAME_FIELD:
                    raise _Repeated(
                        f"`{place}` is selected more than {MAX_SAME_FIELD} times: select a field once "
                        "(an alias for each set of arguments)."
                    )
                if total > MAX_SPREAD_FIELDS:
                    raise _Repeated(
                        f"The query selects more than {MAX_SPREAD_FIELDS:,} fields once its fragments are spread."
                    )
                if selection.selection_set is not None:
                    walk(selection.selection_set, place, set(), stack)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, path, spread, stack)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                # A cycle (`...A` within A) is graphql-core's validation error to report.
                if name in spread or name in stack or name not in fragments:
                    continue
                spread.add(name)
                walk(fragments[name].selection_set, path, spread, (*stack, name))

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            walk(definition.selection_set, "", set(), ())


class RepeatedFieldLimit(SchemaExtension):
    """One place of the answer selected more than `MAX_SAME_FIELD` times is a BAD_REQUEST, before
    graphql-core's validation: its rule that same-named fields can merge compares every pair, so
    `contracts { totalCount }` 490 times (within the 2,000 tokens) took 2.4 s of CPU and answered
    "Validation aborted." (its recursion ran out), and `me { role }` 490 times 3.7 s."""

    def on_validate(self):
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            try:
                _count_fields(context.graphql_document)
            except _Repeated as exc:
                context.pre_execution_errors = [GraphQLError(exc.message, extensions={"code": "BAD_REQUEST"})]
        yield


class OperationNameRequired(SchemaExtension):
    """Several operations and no `operationName`: an error, and nothing runs (the spec's
    GetOperation). Strawberry's ExecutionContext fills a missing name in with the first
    operation's, so `mutation B {..} query A {..}` ran B (found by an outside tester)."""

    def on_validate(self):
        context = self.execution_context
        # The name the client sent, not `operation_name` (the first operation's when none was sent).
        if context.pre_execution_errors is None and context._provided_operation_name is None:
            definitions = context.graphql_document.definitions if context.graphql_document is not None else ()
            if sum(isinstance(d, OperationDefinitionNode) for d in definitions) > 1:
                context.pre_execution_errors = [
                    GraphQLError(
                        "Must provide operation name if query contains multiple operations.",
                        extensions={"code": "BAD_REQUEST"},
                    )
                ]
        yield


def is_introspection(ignore: IgnoreContext) -> bool:
    """Introspection (`__schema`, `__type`) is exempt from the depth limit: GraphiQL's query is
    deeper than 10. By the field's name, not `ignore.field_name`, which is the alias when there
    is one: `{ __deep: contracts { .. } }` went 24 deep (found by an outside tester)."""
    return ignore.node.name.value in INTROSPECTION_FIELDS


class TooManyListItems(GraphQLError):
    pass


class ListItemsLimit(StrawberryGraphQLCoreExecutionContext):
    """At most `MAX_LIST_ITEMS` objects in all the lists of one operation, counted as each list
    is reached, before its items are resolved; past it, each further list is an error.

    Nested lists multiply: `contract { workOrders { contract { workOrders .. } } }` is 19^4
    work orders at depth 10 for a contract with 19 jobs (4 s and 3.3 MB; with 15 aliases 50 s and
    50 MB, found by an outside tester), while each list alone is within its page of 100. Counting
    what the lists hold, rather than estimating from page sizes, refuses only queries that are
    large on the data at hand: 100 contracts with their rules, clocks and jobs fit when they are
    small. Lists of scalars (a filter's values, `types`) are not counted."""

    list_items = 0

    def complete_list_value(self, return_type, field_details_list, info, path, result, *rest):
        if is_composite_type(get_nullable_type(return_type.of_type)):
            if isinstance(result, QuerySet) and result._result_cache is not None:
                result = result._result_cache
            if isinstance(result, list | tuple):
                self._count(len(result))
            elif isinstance(result, QuerySet):
                result = self._counted(result)
        return super().complete_list_value(return_type, field_details_list, info, path, result, *rest)

    def _count(self, items: int) -> None:
        self.list_items += items
        if self.list_items > MAX_LIST_ITEMS:
            raise TooManyListItems(
                f"This query returns more than {MAX_LIST_ITEMS:,} objects in its lists: ask for smaller "
                "pages (pagination: {limit: ..}) or fewer nested lists.",
                extensions={"code": "BAD_REQUEST"},
            )

    def _counted(self, queryset: QuerySet):
        """A queryset the resolver left unevaluated (no prefetch), counted as it is read: in the
        request's thread, or through `async for` on an event loop as graphql-core reads it."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:

            def rows():
                for row in queryset:
                    self._count(1)
                    yield row

            return rows()

        async def async_rows():
            async for row in queryset:
                self._count(1)
                yield row

        return async_rows()

    def build_per_event_executor(self, payload):
        executor = super().build_per_event_executor(payload)
        executor.list_items = 0  # each event of a subscription is an operation of its own
        return executor


class OneListItemsError(SchemaExtension):
    """A query past `MAX_LIST_ITEMS` answers `data: null` and the one error, not the part that fit
    and an error for every list reached after it. A mutation keeps its data: its write happened."""

    def on_execute(self):
        yield
        context = self.execution_context
        result = context.result
        if result is None or not result.errors or context.operation_type != OperationType.QUERY:
            return
        for error in result.errors:
            if isinstance(error, TooManyListItems) or isinstance(error.original_error, TooManyListItems):
                context.result = GraphQLExecutionResult(data=None, errors=[error])
                return


def limit_extensions() -> list:
    return [
        NumberLiteralLimit,  # first: the others read every literal with int()
        RepeatedFieldLimit,  # before graphql-core's validation, whose cost it bounds
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH, should_ignore=is_introspection),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        PageSizeLimiter,
        OperationNameRequired,
        OneListItemsError,
    ]
