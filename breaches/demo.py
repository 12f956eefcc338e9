"""Demo breaches: what a scan finds on the demo work orders right now (as cron would)."""

from django.utils import timezone

from . import services


def seed(log) -> None:
    summary = services.scan_breaches(now=timezone.now())
    log(f"scan: {summary.new_breaches} new breaches, {summary.escalations} escalations")
