"""The one small, explicit registry through which a higher app reacts to a lower app's change.

A lower app's service writes an event (`record_event`); handlers registered for that event's
type run right after, in the same transaction, so the reaction commits or rolls back with the
change. Registration happens in each reacting app's `AppConfig.ready()`, so the import
direction stays downward (DESIGN §3): the lower app never imports the higher one.

    # ledger/apps.py
    def ready(self):
        from events.handlers import on
        from . import reactions
        on("contract.state_changed", reactions.post_initial_allocation)

A handler takes the event and may return a value; `record_event` collects the return values in
`event.reactions` (handler name -> value), e.g. how many clocks a calendar edit recomputed.

`on_recorded(handler)` registers a reaction to *every* event, called with the list of events
one write produced (one for `record_event`, the whole batch for `record_events`), after the
per-type handlers and in the same transaction: for set-based work over any type, such as the
notifications outbox (one INSERT per batch, never one query per event).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

_handlers: dict[str, list[Callable]] = defaultdict(list)
_recorded: list[Callable] = []


def on(event_type: str, handler: Callable) -> None:
    """Run `handler(event)` after every event of this type (once per handler)."""
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


def dispatch(event) -> dict[str, object]:
    return {f"{h.__module__}.{h.__qualname__}": h(event) for h in _handlers.get(event.type, ())}


def registered(event_type: str) -> list[Callable]:
    return list(_handlers.get(event_type, ()))


def on_recorded(handler: Callable) -> None:
    """Run `handler(events)` after every write of events (a list: one event or a batch)."""
    if handler not in _recorded:
        _recorded.append(handler)


def dispatch_recorded(events: list) -> None:
    if events:
        for handler in _recorded:
            handler(events)
