"""What an ASGI server's send raises once the WebSocket client has gone, before the disconnect
message reaches the consumer: uvicorn's ClientDisconnected (an OSError) and daphne's (autobahn's)
Disconnected. A client leaving mid-send is no server error: the consumers stop sending quietly.
"""

from __future__ import annotations

import contextlib

CLIENT_GONE: tuple[type[Exception], ...] = (OSError,)
with contextlib.suppress(ImportError):
    from autobahn.exception import Disconnected

    CLIENT_GONE += (Disconnected,)
