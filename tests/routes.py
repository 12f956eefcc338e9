"""The URL configuration's routes, for tests that walk every one of them (formats, CSV)."""

from django.urls import URLResolver, get_resolver


def routes(patterns=None, prefix: str = ""):
    """(regex, pattern) of every route, the included ones with their prefixes."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern
