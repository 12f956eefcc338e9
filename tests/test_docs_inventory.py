"""What exists is documented where a newcomer looks (README.md and docs/), and what is documented
exists: the REST paths, the GraphQL root fields, the management commands and their options, and
the environment variables. (The event types: tests/notifications/test_event_docs.py.)

A newcomer's sweep (twelfth round) found the GraphQL root fields listed nowhere but in
`schema.graphql` (42 of 55 mutations unnamed in the docs) and `SIGNING_RATE_LIMIT_POST` written as
`_POST`, a name a grep for the variable does not find."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class
from django.urls import Resolver404, resolve

ROOT = Path(__file__).resolve().parents[1]
# decisions.md is the history (names that were renamed stay there as they were); the rest describes
# the service as it is.
DOCS = [ROOT / "README.md", *(path for path in sorted((ROOT / "docs").glob("*.md")) if path.name != "decisions.md")]
TEXT = "\n".join(path.read_text() for path in DOCS)
README = (ROOT / "README.md").read_text()
# What Django's BaseCommand adds to every command (not the project's to document).
DJANGO_OPTIONS = {"--version", "--verbosity", "--settings", "--pythonpath", "--traceback", "--no-color",
                  "--force-color", "--skip-checks", "--help"}  # fmt: skip


# --- REST ---------------------------------------------------------------------------------------


def _segments(tail: str) -> tuple[str, ...]:
    """A path's segments, every id, placeholder or shell variable as `{id}`."""
    return tuple(
        "{id}" if re.fullmatch(r"\{[^}]*\}|\$\w+|<[^>]*>|[0-9]+", segment) else segment
        for segment in tail.strip("/").split("/")
    )


def _documented_paths() -> set[tuple[str, ...]]:
    """`/api/v1/...` and `$API/...` (the README's curl lines) in the docs, as segments."""
    found = set()
    for match in re.finditer(r"(?:/api/v1|\$API)((?:/[A-Za-z0-9_{}$<>.-]+)+)", TEXT):
        if "..." not in match.group(1):  # `/api/v1/...`: any path
            found.add(_segments(match.group(1).rstrip(".")))
    return found


def test_every_documented_api_path_exists():
    from stream.routing import websocket_urlpatterns

    documented = _documented_paths()
    assert ("contracts", "{id}", "statement") in documented  # the scan reads the curl lines
    missing = []
    for segments in sorted(documented):
        path = "/api/v1/" + "/".join("1" if s == "{id}" else s for s in segments)
        if any(pattern.pattern.match(path.lstrip("/")) for pattern in websocket_urlpatterns):
            continue  # the WebSocket stream, routed by config/asgi.py
        try:
            resolve(path)
        except Resolver404:
            missing.append(path)
    assert missing == [], f"the docs name API paths that do not exist: {missing}"


@pytest.mark.django_db
def test_every_api_path_is_documented(client):
    """Each path of the OpenAPI document is named in the docs, or is a detail (`/{id}`) or an action
    (`/approve`: its name in backticks) of a documented path."""
    document = client.get("/api/v1/schema?format=json")
    assert document.status_code == 200
    operations = [_segments(path.removeprefix("/api/v1")) for path in document.json()["paths"]]
    assert len(operations) > 70
    documented = _documented_paths()

    def named(segments):
        return any(
            len(doc) == len(segments) and all(d == s or s == "{id}" for d, s in zip(doc, segments, strict=True))
            for doc in documented
        )

    def covered(segments):
        if named(segments):
            return True
        parent, last = segments[:-1], segments[-1]
        if not parent or not covered(parent):
            return False
        return last == "{id}" or re.search(rf"`/?{re.escape(last)}[`?]", TEXT) is not None

    missing = ["/api/v1/" + "/".join(segments) for segments in operations if not covered(segments)]
    assert missing == [], f"API paths the docs do not name: {missing}"


# --- GraphQL ------------------------------------------------------------------------------------


def _graphql_table() -> tuple[set[str], set[str]]:
    """The queries and mutations of the README's table of root fields."""
    queries, mutations = set(), set()
    start = README.index("Every root field, by the REST resource it mirrors")
    lines = README[start:].splitlines()
    header = lines.index("| REST | queries | mutations |")
    for line in lines[header + 2 :]:
        if not line.startswith("| `"):
            break
        _rest, query_cell, mutation_cell = (cell.strip() for cell in line.strip().strip("|").split("|"))
        queries |= set(re.findall(r"`(\w+)`", query_cell.split("(subscription")[0]))
        mutations |= set(re.findall(r"`(\w+)`", mutation_cell))
    return queries, mutations


def test_every_graphql_root_field_is_in_the_readme_table():
    from config.graphql.schema import schema

    served = schema._schema
    queries, mutations = _graphql_table()
    assert set(served.query_type.fields) == queries, (
        f"not in the README: {sorted(set(served.query_type.fields) - queries)}; "
        f"no such query: {sorted(queries - set(served.query_type.fields))}"
    )
    assert set(served.mutation_type.fields) == mutations, (
        f"not in the README: {sorted(set(served.mutation_type.fields) - mutations)}; "
        f"no such mutation: {sorted(mutations - set(served.mutation_type.fields))}"
    )
    assert set(served.subscription_type.fields) == {"events"}
    assert "(subscription: `events`)" in README


# --- Management commands -------------------------------------------------------------------------


def _project_commands() -> dict[str, str]:
    """The project's own commands (not Django's or a library's): name -> app."""
    return {
        name: app
        for name, app in get_commands().items()
        if not app.startswith(("django.", "rest_framework", "drf_spectacular", "channels", "daphne", "strawberry"))
        and (ROOT / app.replace(".", "/")).is_dir()
    }


def _options(name: str, app: str) -> set[str]:
    parser = load_command_class(app, name).create_parser("manage.py", name)
    return {option for action in parser._actions for option in action.option_strings if option.startswith("--")}


def _synopses() -> dict[str, set[str]]:
    """`` `NAME [--option X] ...` `` (or `` `NAME ARG [--option X]` ``) in the docs: name -> its options."""
    found: dict[str, set[str]] = {}
    for name, rest in re.findall(r"`(\w+)((?: [A-Z]+)? \[--[^`]*)`", TEXT):
        found.setdefault(name, set()).update(re.findall(r"--[a-z][a-z-]*", rest))
    return found


def test_every_command_has_a_synopsis_with_its_options():
    commands = _project_commands()
    assert {"scan_breaches", "run_lifecycle", "deliver_notifications", "seed_demo"} <= set(commands)
    synopses = _synopses()
    problems = []
    for name, app in sorted(commands.items()):
        options = _options(name, app) - DJANGO_OPTIONS
        if name not in synopses:
            problems.append(f"{name}: no `{name} [--option ...]` in the docs (its options: {sorted(options)})")
        elif synopses[name] != options:
            problems.append(f"{name}: the docs say {sorted(synopses[name])}, the command takes {sorted(options)}")
    assert problems == [], problems


def test_every_documented_command_and_option_exists():
    """`manage.py NAME --option` in the docs is a command and one of its options, and so is each
    synopsis' name."""
    commands = get_commands()
    uses = re.findall(r"manage\.py (\w+)([^\n`#|]*)", TEXT)
    assert len(uses) > 20
    problems = [f"{name}: no such command" for name in _synopses() if name not in commands]
    for name, rest in uses:
        if name not in commands:
            problems.append(f"{name}: no such command")
            continue
        options = _options(name, commands[name])
        problems += [
            f"{name} {option}: no such option"
            for option in re.findall(r"--[a-z][a-z-]*", rest)
            if option not in options
        ]
    assert problems == [], problems


# --- Settings ----------------------------------------------------------------------------------

_READERS = {"env_int", "env_float", "env_bool", "env_rate", "raw_value", "env"}  # config.environment, settings


def _reads_environment(call: ast.Call) -> bool:
    """`env_int("X")`, `env("X")`, or a method of `env` or `os.environ` (`env.str("X")`, `os.environ.get("X")`)."""
    if isinstance(call.func, ast.Name):
        return call.func.id in _READERS
    return isinstance(call.func, ast.Attribute) and ast.unparse(call.func.value) in ("env", "os.environ")


def _variables_read() -> set[str]:
    """Every environment variable the settings and gunicorn.conf.py read (`env_int("X", ...)`,
    `env.str("X")`, `os.environ.get("X")`, `os.environ["X"]`)."""
    found = set()
    for path in (ROOT / "config" / "settings.py", ROOT / "gunicorn.conf.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args and _reads_environment(node):
                key = getattr(node.args[0], "value", None)
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                key = getattr(node.slice, "value", None)
            else:
                continue
            if isinstance(key, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", key):
                found.add(key)
    return found


def test_every_environment_variable_is_documented():
    read = _variables_read()
    assert {"DATABASE_URL", "SECRET_KEY", "JWT_SIGNING_KEY", "STREAM_HEARTBEAT", "GUNICORN_LIMIT_REQUEST_LINE"} <= read
    missing = sorted(name for name in read if f"`{name}`" not in README)
    assert missing == [], f"read from the environment but not in the README (as `NAME`): {missing}"


def test_every_documented_variable_is_read():
    """The first cell of each row of the README's variable tables names a variable the service reads."""
    documented = set()
    for line in README.splitlines():
        if re.match(r"\| `[A-Z][A-Z0-9_]+`", line):
            documented |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    assert len(documented) > 50
    assert sorted(documented - _variables_read()) == []
