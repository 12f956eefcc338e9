"""Exit 0 when the PostgreSQL server of a DATABASE_URL answers, 1 otherwise (used by make)."""

import sys

import psycopg


def main(url: str) -> int:
    # Connect to the server's maintenance database: the named one may not exist yet.
    base = url.rsplit("/", 1)[0] + "/postgres"
    try:
        psycopg.connect(base.replace("postgres://", "postgresql://", 1), connect_timeout=3).close()
    except psycopg.Error as exc:
        print(f"PostgreSQL not reachable: {exc}".strip(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
