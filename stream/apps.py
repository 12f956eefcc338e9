from django.apps import AppConfig


class StreamConfig(AppConfig):
    """The live event stream: WebSocket (`consumers`) and Server-Sent Events (`sse`), both
    reading the event log forward from a cursor (`reader`), woken by `events.feed`'s pokes."""

    name = "stream"
    verbose_name = "Live event stream"
