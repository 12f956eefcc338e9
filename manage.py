#!/usr/bin/env python
"""Django's command-line utility for the SLA service."""

import os
import sys

import config


def main() -> None:
    # `runserver` is daphne's (INSTALLED_APPS): ASGI, whose settings load before config/asgi.py.
    config.SERVED_BY_ASGI = sys.argv[1:2] == ["runserver"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A setting the service cannot use (config/settings.py names the variable and the value):
        # one line on stderr and exit status 1, as a command's own errors, not a 40-line traceback
        # in cron's mail (found by the operator's sweep).
        sys.stderr.write(f"ImproperlyConfigured: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
