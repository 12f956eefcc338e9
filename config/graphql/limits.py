"""Abuse limits, checked before anything runs: depth 10, aliases 15, tokens 2,000, page size 100;
and the GraphQL spec's rule that a document of several operations names the one to run.

Depth, aliases and tokens are strawberry's own validation rules; the page size is checked here,
on the parsed document with its variables, so `pagination: {limit: 1000}` is refused rather than
quietly clamped.
"""

from __future__ import annotations

from graphql import GraphQLError, ObjectValueNode, OperationDefinitionNode, VariableNode, visit
from graphql.language import ArgumentNode, Visitor
from graphql.utilities import value_from_ast_untyped
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter, SchemaExtension

from .base import MAX_PAGE_SIZE

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000


class _PaginationVisitor(Visitor):
    def __init__(self, variables: dict):
        super().__init__()
        self.variables = variables
        self.too_large: list[int] = []

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
        limit = pagination.get("limit") if isinstance(pagination, dict) else None
        if isinstance(limit, int) and (limit > MAX_PAGE_SIZE or limit < 0):
            self.too_large.append(limit)


class PageSizeLimiter(SchemaExtension):
    def on_validate(self):
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            visitor = _PaginationVisitor(context.variables or {})
            visit(context.graphql_document, visitor)
            if visitor.too_large:
                context.pre_execution_errors = [
                    GraphQLError(
                        f"pagination.limit must be between 0 and {MAX_PAGE_SIZE}; got {visitor.too_large[0]}.",
                        extensions={"code": "BAD_REQUEST"},
                    )
                ]
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


def limit_extensions() -> list:
    return [
        # Introspection (`__schema`, `__type`) is exempt from the depth limit: GraphiQL needs it.
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH, should_ignore=lambda ignore: ignore.field_name.startswith("__")),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        PageSizeLimiter,
        OperationNameRequired,
    ]
