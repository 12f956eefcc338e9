"""`schema.graphql` is the schema the code serves: a change to the API is a reviewed diff; and the
operations the README and docs show are valid against it, as a reader copies them."""

import re

from config.graphql.sdl import SDL_FILE, sdl


def test_the_committed_sdl_is_the_served_schema():
    assert SDL_FILE.read_text() == sdl(), (
        "schema.graphql disagrees with the code: run `.venv/bin/python -m config.graphql.sdl` and review the diff."
    )


def _documented_operations() -> list[str]:
    """The GraphQL blocks of the README and docs/, as a reader copies them."""
    root = SDL_FILE.parent
    texts = [(root / "README.md").read_text(), *(path.read_text() for path in sorted((root / "docs").glob("*.md")))]
    return [block for text in texts for block in re.findall(r"```graphql\n(.*?)```", text, re.S)]


def test_every_documented_operation_is_valid_against_the_schema():
    from graphql import parse, validate

    from config.graphql.schema import schema

    operations = _documented_operations()
    assert len(operations) >= 3
    for operation in operations:
        errors = validate(schema._schema, parse(operation))
        assert not errors, f"{[error.message for error in errors]} in\n{operation}"
