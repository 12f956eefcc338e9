"""Fuzz the live API with Schemathesis, from its own OpenAPI document (issue 8).

    python tests/fuzz/run.py --database-url postgres://postgres@127.0.0.1:5432/sla [--max-examples 10]

The database named by --database-url is dropped and created anew (it is the fuzzer's own),
migrated and loaded with the demo data (seed_demo) so that ids exist; a gunicorn server then
serves it on a free loopback port, and Schemathesis runs every operation the schema lists
(whatever endpoints exist at the time: nothing here names one) with every check, a fixed seed
and a bounded number of examples, authenticated as the demo organization's manager. The exit
status is Schemathesis's: non-zero on any failure. Reports go to var/fuzz/.

Throttles are lifted for the run (the fuzzer is one client sending thousands of requests);
everything else is the production configuration.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"Refusing an unusual database name: {name!r}")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def wait_until_up(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("The server exited before it answered.")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"The server did not answer on {base} within {timeout} s.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="PostgreSQL URL of the fuzzer's own database.")
    parser.add_argument("--max-examples", type=int, default=10, help="Test cases per operation and phase.")
    parser.add_argument("--seed", type=int, default=1)
    # One worker: hypothesis's lambda descriptions call ast.parse, which is not thread-safe on Python 3.11.
    parser.add_argument("--workers", default="1", help="Schemathesis workers.")
    parser.add_argument("extra", nargs="*", help="More schemathesis arguments (after --).")
    options = parser.parse_args()
    if not options.database_url.startswith("postgres"):
        raise SystemExit("The fuzzer runs on PostgreSQL (--database-url postgres://...).")

    env = {
        **os.environ,
        "DATABASE_URL": options.database_url,
        "THROTTLE_USER_RATE": "1000000/min",
        "THROTTLE_ANON_RATE": "1000000/min",
        "THROTTLE_LOGIN_RATE": "1000000/min",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
    }
    env.pop("REDIS_URL", None)  # one server, its own local cache: the fuzz never touches a shared Redis
    print(f"== fuzz: fresh database {urlsplit(options.database_url).path.lstrip('/')}, migrate, seed_demo", flush=True)
    recreate_database(options.database_url)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_demo", "--quiet")
    token = manage(env, "issue_token", "demo-manager", "--org", "demo").splitlines()[0]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_dir = ROOT / "var" / "fuzz"
    log_dir.mkdir(parents=True, exist_ok=True)
    server_log = open(log_dir / "server.log", "w")  # noqa: SIM115 (closed in finally)
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--timeout", "60"],
        cwd=ROOT,
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(base, server)
        command = [
            str(BIN / "schemathesis"),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{base}/api/v1/schema?format=json",
            "--checks",
            "all",
            "--seed",
            str(options.seed),
            "--max-examples",
            str(options.max_examples),
            "--workers",
            options.workers,
            "--header",
            f"Authorization: Bearer {token}",
            "--request-timeout",
            "30",
            "--report",
            "junit,ndjson",
            "--report-dir",
            str(log_dir),
            "--output-sanitize",
            "true",
            *options.extra,
        ]
        print(f"== fuzz: schemathesis on {base}, seed {options.seed}, {options.max_examples} examples", flush=True)
        started = time.monotonic()
        status = subprocess.run(command, cwd=ROOT, env=env).returncode
        print(f"== fuzz: schemathesis exited {status} after {time.monotonic() - started:.0f} s", flush=True)
        return status
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()


if __name__ == "__main__":
    sys.exit(main())
