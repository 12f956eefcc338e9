"""One error vocabulary (DESIGN §3): domain errors with no REST import, mapped once per face."""

from __future__ import annotations

import ast
import pathlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection, transaction

from config import errors
from config.api.exceptions import exception_handler
from config.management import DomainCommand

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOMAIN_MODULES = ["config/errors.py", *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("*/services.py"))]
DOMAIN_MODULES += sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("*/selectors.py"))
DOMAIN_MODULES += ["contracts/assets.py", "contracts/amendments.py", "workorders/rules.py"]  # services by another name


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", DOMAIN_MODULES)
def test_services_and_selectors_do_not_import_the_rest_framework(module):
    imported = _imports(ROOT / module)
    assert not {name for name in imported if name.startswith(("rest_framework", "config.api"))}, module


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.BadRequest("Unknown filter: x", {"x": ["Unknown filter."]}), 400),
        (errors.Invalid(errors={"contract_id": ["Not found."]}), 422),
        (errors.Unprocessable("Nope."), 422),
        (errors.Conflict("Contract is active."), 409),
        (errors.Forbidden("Four eyes."), 403),
        (errors.NotFound(), 404),
    ],
)
def test_the_rest_face_maps_each_kind_to_its_status_and_envelope(error, status):
    response = exception_handler(error, {})
    assert response.status_code == status
    assert response.data["message"] == error.message
    assert response.data.get("errors") == error.errors


def _database_error(errcode: str) -> OperationalError:
    """What Django raises when PostgreSQL ends a statement with this condition (raised for real)."""
    with pytest.raises(OperationalError) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '{errcode}'; END $$")
    return raised.value


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's error conditions")
@pytest.mark.parametrize(
    ("errcode", "status"), [("deadlock_detected", 409), ("serialization_failure", 409), ("lock_not_available", 500)]
)
def test_a_deadlock_or_serialization_failure_is_a_409_to_retry(errcode, status):
    # PostgreSQL rolled the whole transaction back: the client may send it again (found by an
    # outside tester as a 500 when a calendar edit deadlocked with job updates).
    response = exception_handler(_database_error(errcode), {})
    assert response.status_code == status
    if status == 409:
        assert response.data == {"message": "Conflicting write: the record was changed or created concurrently. Retry."}


def test_invalid_without_a_message_says_validation_failed():
    assert str(errors.Invalid()) == "Validation failed."
    assert errors.Unprocessable is errors.Invalid


class _Refusing(DomainCommand):
    def add_arguments(self, parser):
        parser.add_argument("--kind")

    def handle(self, *args, kind=None, **options):
        raise {"conflict": errors.Conflict, "invalid": errors.Invalid}[kind]("Refused.", {"base": ["why"]})


@pytest.mark.parametrize(("kind", "code"), [("conflict", 3), ("invalid", 2)])
def test_the_command_face_exits_with_the_kind_s_code(kind, code):
    with pytest.raises(CommandError) as caught:
        call_command(_Refusing(), kind=kind)
    assert caught.value.returncode == code
    assert "Refused. base: why" in str(caught.value)
