"""The schema in SDL, committed as `schema.graphql` so that a change to the API is a reviewed diff.

    .venv/bin/python -m config.graphql.sdl      # rewrite schema.graphql from the code

`tests/graphql/test_schema_file.py` fails when the code and the file disagree.
"""

from __future__ import annotations

import os
import pathlib

SDL_FILE = pathlib.Path(__file__).resolve().parents[2] / "schema.graphql"


def sdl() -> str:
    from .schema import schema

    return schema.as_str() + "\n"


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    SDL_FILE.write_text(sdl())
    print(f"wrote {SDL_FILE}")
