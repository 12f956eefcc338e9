"""The one JSON parser of the API: strict JSON, bounded nesting, text every database can store.

A body is "malformed JSON" (400) when it is not JSON (NaN and Infinity are not, RFC 8259), when
it nests deeper than `MAX_JSON_DEPTH` (a body thousands deep would otherwise exhaust the
interpreter's recursion on the way in or out), when an object names one key twice (RFC 8259
leaves its meaning to the reader: a proxy or gateway that reads the first `role` while the
service read the last would judge another request than the one served), or when a string or key
holds a NUL character or a lone surrogate (PostgreSQL cannot store either; SQLite would store a
different text). The size of a body is bounded before parsing, by `RequestLimitsMiddleware`.

`loads` is the same check for JSON that DRF does not parse: GraphQL over HTTP and WebSocket, and
the event stream's messages; like DRF's parser, it refuses NaN and Infinity.
"""

from __future__ import annotations

import codecs
import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json as drf_json

MAX_JSON_DEPTH = 32


def json_problem(value, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """What makes a parsed JSON value unacceptable, or None. Iterative: no recursion to exhaust."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "strings may not contain NUL characters (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "strings may not contain lone surrogates (\\ud800-\\udfff)"
        elif isinstance(item, (list, dict)):
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels"
            children = list(item.items()) if isinstance(item, dict) else item
            for child in children:
                if isinstance(child, tuple):  # a key and its value
                    stack.append((child[0], depth))
                    stack.append((child[1], depth + 1))
                else:
                    stack.append((child, depth + 1))
    return None


class MalformedJSON(ValueError):
    """JSON the API refuses, or text that is not JSON at all: str() says why."""


def bounded(decode):
    """The value `decode()` returns, within the bounds above; MalformedJSON if it breaks them."""
    try:
        value = decode()
    except RecursionError:
        raise MalformedJSON(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    problem = json_problem(value)
    if problem:
        raise MalformedJSON(problem)
    return value


def loads(text: str | bytes):
    """`json.loads` within the bounds of the API's parser; MalformedJSON for any unreadable text
    (not JSON, not UTF-8, a key twice in an object, nested too deep, a NUL or lone surrogate)."""
    return bounded(lambda: _decode(json.loads, text))


def _decode(read, source, refuse_constant=None):
    try:
        return read(source, parse_constant=refuse_constant or _refuse_constant, object_pairs_hook=_unique_keys)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a key twice
        raise MalformedJSON(str(exc)) from None


def _unique_keys(pairs: list[tuple]) -> dict:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"the key {json.dumps(twice, ensure_ascii=False)} appears twice in one object")
    return value


def _refuse_constant(name: str):
    """NaN and Infinity are not JSON (RFC 8259): refused as DRF's strict parser refuses them in REST."""
    raise ValueError(f"Out of range float values are not JSON compliant: {name}")


class StrictJSONParser(JSONParser):
    """DRF's JSON parser (its media type, its encoding, its "JSON parse error - ..." 400) reading
    with `loads`' rules."""

    def parse(self, stream, media_type=None, parser_context=None):
        stream = codecs.getreader(get_encoding(parser_context or {}))(stream)
        try:
            return bounded(lambda: _decode(json.load, stream, drf_json.strict_constant))
        except MalformedJSON as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
