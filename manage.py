#!/usr/bin/env python
"""Django's command-line utility for the SLA service."""

import os
import sys

import config


def main() -> None:
    # `runserver` is daphne's (INSTALLED_APPS): ASGI, whose settings load before config/asgi.py.
    config.SERVED_BY_ASGI = sys.argv[1:2] == ["runserver"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
