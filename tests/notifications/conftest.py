"""A real HTTP receiver on 127.0.0.1 (a free port, in a thread) and helpers to run the worker.

The receiver answers each POST with the next scripted answer (default 204) and keeps every
request; tests verify the signatures with the `standardwebhooks` package, as a receiver would.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from standardwebhooks.webhooks import Webhook

from notifications import services, targets

PUBLIC_V4, PUBLIC_V6 = "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)

    def verify(self, secret: str):
        """The payload if the signature verifies with `secret` (raises otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    url: str
    port: int
    answers: list = field(default_factory=list)  # (status, headers, body), used in order
    received: list[Received] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, status: int, headers: dict | None = None, body: bytes = b"", times: int = 1) -> None:
        self.answers.extend([(status, headers or {}, body)] * times)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.received)


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if receiver.delay:
                time.sleep(receiver.delay)
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                status, headers, answer = receiver.answers.pop(0) if receiver.answers else (204, {}, b"")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    port = server.server_address[1]
    state = Receiver(url=f"http://127.0.0.1:{port}/hooks", port=port)
    server.RequestHandlerClass = _handler(state)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def dns(monkeypatch):
    """A stub resolver: `dns["name"] = [addresses]`; any other name does not resolve."""
    answers: dict[str, list[str]] = {}
    calls: list[str] = []

    def resolve(host, port):
        calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(answers[host])

    monkeypatch.setattr(targets, "resolve", resolve)
    answers["calls"] = calls
    return answers


@pytest.fixture
def connects(monkeypatch):
    """Every address the code connects to (the real connect still runs: loopback only here)."""
    seen = []
    real = socket.create_connection

    def watched(address, *args, **kwargs):
        seen.append(address)
        assert address[0].startswith("127."), f"a connection to {address} would leave loopback"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", watched)
    return seen


@pytest.fixture
def loopback(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True


@pytest.fixture
def endpoint(org, receiver, loopback):
    """An active endpoint of `org` for every event type, delivering to the receiver."""
    return services.create_endpoint(organization=org, actor=None, data={"url": receiver.url, "event_types": ["*"]})


def deliver(now=None, **options) -> str:
    """Run `deliver_notifications --once` and return what it printed."""
    out = io.StringIO()
    if now is not None:
        options["now"] = now if isinstance(now, str) else now.isoformat()
    call_command("deliver_notifications", once=True, stdout=out, **options)
    return out.getvalue()
