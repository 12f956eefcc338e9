"""Fuzz the live API with Schemathesis, from its own OpenAPI document (issue 8).

    python tests/fuzz/run.py --database-url postgres://postgres@127.0.0.1:5432/sla [--max-examples 10]

The database named by --database-url is dropped and created anew (it is the fuzzer's own),
migrated and loaded with the demo data (seed_demo) so that ids exist; a gunicorn server then
serves it on a free loopback port, and Schemathesis runs every operation the schema lists
(whatever endpoints exist at the time: nothing here names one) with every check, a fixed seed
and a bounded number of examples, in two passes chosen by the role each operation documents
(`x-required-role`, from config/api/permissions.py): the demo organization's manager fuzzes every
operation a manager may call, then its admin fuzzes the admin-only ones (members, webhooks, ...),
which would otherwise only ever answer the manager's 403. The exit status is non-zero when either
pass fails. Reports go to var/fuzz/<pass>/.

Throttles are lifted for the run (the fuzzer is one client sending thousands of requests);
everything else is the production configuration.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(PYTHON).parent
sys.path.insert(0, str(ROOT))

# The server helpers of the list benchmark: a free loopback port, a fresh database, health, stop.
from bench.list_counterparties import free_port, reset_database, stop, wait_for_health  # noqa: E402


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


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
        "JWT_ACCESS_MINUTES": "720",  # a run at 150 examples per operation outlasts the default hour
    }
    env.pop("REDIS_URL", None)  # one server, its own local cache: the fuzz never touches a shared Redis
    print(f"== fuzz: fresh database {urlsplit(options.database_url).path.lstrip('/')}, migrate, seed_demo", flush=True)
    reset_database(options.database_url)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_demo", "--quiet")
    tokens = {
        role: manage(env, "issue_token", f"demo-{role}", "--org", "demo").splitlines()[0]
        for role in ("manager", "admin")
    }
    # Each operation in exactly one pass, with the least role that may call it.
    passes = [
        ("manager", ["--exclude-by", "/x-required-role == admin"]),
        ("admin", ["--include-by", "/x-required-role == admin"]),
    ]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_dir = ROOT / "var" / "fuzz"
    log_dir.mkdir(parents=True, exist_ok=True)
    server_log = open(log_dir / "server.log", "w")  # noqa: SIM115 (closed in finally)
    # From the repository's root gunicorn reads gunicorn.conf.py, the production limits of the HTTP head.
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--timeout", "60"],
        cwd=ROOT,
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_health(server, port, timeout=60)
        statuses = []
        for role, selection in passes:
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
                f"Authorization: Bearer {tokens[role]}",
                "--request-timeout",
                "30",
                "--report",
                "junit,ndjson",
                "--report-dir",
                str(log_dir / role),
                "--output-sanitize",
                "true",
                *selection,
                *options.extra,
            ]
            print(
                f"== fuzz ({role} pass): schemathesis on {base}, seed {options.seed}, "
                f"{options.max_examples} examples",
                flush=True,
            )
            started = time.monotonic()
            status = subprocess.run(command, cwd=ROOT, env=env).returncode
            elapsed = time.monotonic() - started
            print(f"== fuzz ({role} pass): schemathesis exited {status} after {elapsed:.0f} s", flush=True)
            statuses.append(status)
        return next((status for status in statuses if status), 0)
    finally:
        stop(server)
        server_log.close()


if __name__ == "__main__":
    sys.exit(main())
