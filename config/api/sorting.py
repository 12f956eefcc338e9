"""`?sort=name,-created_at` (DESIGN §5).

A view declares `sort_fields` (public key -> ORM path, or an expression such as a rank of
choices: `PRIORITY_RANK`) and `default_sort` (its `get_default_sort()` may vary it by request);
`id` is always sortable and always appended as a tie-breaker so that pages are stable.
"""

from .exceptions import BadRequest


def is_collection(view) -> bool:
    """Whether a view's action reads a collection: `list`, or a GET sub-path of the collection that
    lists through it (`GET /contracts/active`), which takes every list parameter too."""
    if getattr(view, "action", None) == "list":
        return True
    request = getattr(view, "request", None)
    return (
        getattr(view, "detail", None) is False
        and getattr(request, "method", None) in ("GET", "HEAD")
        and getattr(view, "pagination_class", None) is not None
    )


def sort_keys(raw: str, allowed) -> list[tuple[str, bool]]:
    """`?sort=` parsed: (key, descending) pairs, each key among `allowed`, once; else a 400."""
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if not keys:
        raise BadRequest("sort names no key: give sort keys, or leave sort out.", {"sort": ["Blank."]})
    # One leading '-' at most: '--name' is not a key.
    not_allowed = [key.removeprefix("-") for key in keys if key.removeprefix("-") not in allowed]
    if not_allowed:
        raise BadRequest(f"Sorting not allowed on fields: {', '.join(not_allowed)}")
    names = [key.removeprefix("-") for key in keys]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise BadRequest(f"Sorting on a field twice: {', '.join(twice)}", {"sort": ["Each key once."]})
    return [(key.removeprefix("-"), key.startswith("-")) for key in keys]


class SortBackend:
    def filter_queryset(self, request, queryset, view):
        sort_fields: dict[str, str] = {"id": "id", **getattr(view, "sort_fields", {})}
        raw = request.query_params.get("sort")
        if raw is None:
            raw = view.get_default_sort()
        keys = sort_keys(raw, sort_fields)
        ordering = []
        for name, descending in keys:
            path = sort_fields[name]
            if isinstance(path, str):
                ordering.append(f"-{path}" if descending else path)
            else:
                ordering.append(path.desc() if descending else path.asc())
        if "id" not in (name for name, _ in keys):
            ordering.append("-id" if keys[-1][1] else "id")
        return queryset.order_by(*ordering)

    def get_schema_operation_parameters(self, view):
        if not is_collection(view):
            return []
        keys = sorted({"id", *getattr(view, "sort_fields", {})})
        return [
            {
                "name": "sort",
                "in": "query",
                "required": False,
                "style": "form",
                "explode": False,
                "schema": sort_schema(keys),
                "description": sort_description(keys, view.default_sort),
            }
        ]


def sort_schema(keys) -> dict:
    """The OpenAPI schema of `?sort=` over these keys."""
    items = {"type": "string", "enum": [*keys, *(f"-{key}" for key in keys)]}
    return {"type": "array", "minItems": 1, "uniqueItems": True, "items": items}


def sort_description(keys, default: str) -> str:
    return (
        f"Comma-separated sort keys, '-' for descending (`sort=name,-created_at`, or repeated: "
        f"`sort=name&sort=-created_at`). "
        f"Allowed: {', '.join(keys)}. Default: {default}."
    )
