"""`schema.graphql` is the schema the code serves: a change to the API is a reviewed diff."""

from config.graphql.sdl import SDL_FILE, sdl


def test_the_committed_sdl_is_the_served_schema():
    assert SDL_FILE.read_text() == sdl(), (
        "schema.graphql disagrees with the code: run `.venv/bin/python -m config.graphql.sdl` and review the diff."
    )
