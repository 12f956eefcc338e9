"""Real ASGI server processes for end-to-end stream tests and the latency benchmark.

`AsgiServer(env)` starts `uvicorn config.asgi:application` (or, with `server="daphne"`, daphne, what
`manage.py runserver` serves with) on a socket this process bound to a
free port of 127.0.0.1 (passed with `--fd`, so no port can be taken in between), waits for
`/healthz`, and stops the process on `stop()` (or at the end of a `with`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for a PostgreSQL connection's settings (the test database's own name)."""
    user = quote(settings_dict.get("USER") or "")
    password = f":{quote(settings_dict['PASSWORD'])}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


class AsgiServer:
    def __init__(self, env: dict[str, str], server: str = "uvicorn"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        if server == "daphne":
            command = [sys.executable, "-m", "daphne", "--fd", str(self.sock.fileno()), "-v", "1"]
            command += ["config.asgi:application"]
        else:
            command = [sys.executable, "-m", "uvicorn", "config.asgi:application"]
            command += ["--fd", str(self.sock.fileno()), "--log-level", "warning", "--no-access-log"]
        full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "ALLOWED_HOSTS": "127.0.0.1", **env}
        # Output to a file, not a pipe: a pipe nobody reads fills up and blocks the server's loop.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server; closed by stop())
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, pass_fds=[self.sock.fileno()], stdout=self.log, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                with urllib.request.urlopen(f"{self.http}/healthz", timeout=2) as response:
                    if json.load(response)["status"] == "ok":
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become ready")

    def stop(self) -> str:
        if self.log.closed:
            return ""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.sock.close()
        output = self.output()
        self.log.close()
        return output

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        output = self.stop()
        if exc[0] is not None:
            print(f"--- server output ---\n{output[-5000:]}")


def post_json(url: str, body: dict, token: str) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
