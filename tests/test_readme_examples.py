"""The README's curl examples run as written against the demo data (README: "Every example below runs
as written against `make run`'s demo data"): each ```sh block that calls the API is run by bash,
in the README's order, against a live server on a fresh demo database, and every request must
succeed. Only the host changes, and `.venv/bin/python manage.py issue_token NAME` reads a token
issued here (the command would read the development database, not the test's).

A newcomer's sweep (twelfth round) ran them by hand; this keeps them running."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from contracts.models import Contract
from tenancy.auth import issue_tokens
from tenancy.models import Membership
from tests.conftest import client_for
from workorders.models import VisitPlan

README = Path(__file__).resolve().parents[1] / "README.md"
ISSUE_TOKEN = ".venv/bin/python manage.py issue_token"


def _runnable_blocks() -> list[str]:
    """The ```sh blocks that call the API. The one of "Authentication and tenancy" is left out: it
    shows token placeholders (`TOKEN=...`, `"eyJ..."`) for the reader to fill in."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    return [block for block in blocks if "curl" in block and "eyJ..." not in block and "make run " not in block]


@pytest.mark.django_db(transaction=True, reset_sequences=True)  # the README's ids are a fresh demo's
def test_the_readme_examples_run_as_written(live_server, settings, tmp_path):
    # The webhook block sends to a receiver on 127.0.0.1, with `WEBHOOKS_ALLOW_LOOPBACK=1 make run`.
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    call_command("seed_demo", "--quiet", stdout=io.StringIO())
    tokens = {
        membership.user.username: issue_tokens(membership)["access"]
        for membership in Membership.objects.select_related("user", "organization").filter(organization__slug="demo")
    }
    blocks = _runnable_blocks()
    assert len(blocks) >= 8 and "API=http://127.0.0.1:8000/api/v1" in blocks[0]
    prelude = "\n".join(
        [
            "set -euo pipefail",
            # Each request's status and URL on stderr; the body goes where the README sends it.
            "curl() { command curl -sS -w '%{stderr}HTTP %{http_code} %{url_effective}\\n' \"$@\"; }",
            'issue_token() { case "$1" in '
            + " ".join(f'{name}) echo "{token}";;' for name, token in tokens.items())
            + ' *) echo "no demo user $1" >&2; return 1;; esac; }',
        ]
    )
    script = "\n".join([prelude, *blocks]).replace(ISSUE_TOKEN, "issue_token")
    script = script.replace("http://127.0.0.1:8000", live_server.url)
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    requests = re.findall(r"^HTTP (\d{3}) (\S+)$", done.stderr, re.M)
    assert done.returncode == 0, (done.stderr[-3000:], done.stdout[-3000:])
    failed = [(status, url) for status, url in requests if not status.startswith("2")]
    assert failed == [], f"{failed}\n{done.stdout[-3000:]}"
    assert len(requests) >= 40, requests  # every curl line ran
    # What the text promises of a few of them.
    assert (tmp_path / "statement.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "evidence.html").read_text().lstrip().lower().startswith("<!doctype html>")
    assert (tmp_path / "jobs.csv").read_text().startswith("id,reference,contract_id,contract_name,priority,reported_at")
    assert '"secret":"whsec_' in (tmp_path / "webhook.json").read_text()
    # "the demo breach's events": how many the demo has depends on the hour it is seeded at (its
    # jobs are dated from now against office hours; 2 before 08:00 UTC, more after): each queued once.
    redelivered = re.search(r'\{"queued":(\d+),"event_ids":\[([\d,]*)\]\}', done.stdout)
    assert redelivered, done.stdout[-3000:]
    queued, ids = int(redelivered[1]), [int(i) for i in redelivered[2].split(",") if i]
    assert queued >= 2 and len(ids) == queued == len(set(ids)), redelivered[0]
    # The visit plan example adds a plan to the demo's, not a copy of its quarterly inspection
    # (the listing then showed every visit twice, at the same instant).
    summaries = list(VisitPlan.objects.filter(contract__reference="DEMO-MA-001").values_list("summary", flat=True))
    assert len(summaries) == 2 and len(set(summaries)) == 2, summaries


@pytest.mark.django_db
def test_the_readme_graphql_queries_and_mutations_run():
    """The README's GraphQL operations answer data, not errors, on the demo, with the variables the
    text gives them: `$id` and `$contract` the active DEMO-SC-001, `$at` now. (The subscription is
    run over the WebSocket by tests/graphql.)"""
    call_command("seed_demo", "--quiet", stdout=io.StringIO())
    contract = Contract.objects.get(reference="DEMO-SC-001")
    membership = Membership.objects.get(user__username="demo-manager", organization__slug="demo")
    client = client_for(membership)
    variables = {"id": contract.pk, "contract": contract.pk, "at": timezone.now().isoformat()}
    operations = [
        block
        for block in re.findall(r"```graphql\n(.*?)```", README.read_text(), re.S)
        if not block.lstrip().startswith("subscription")
    ]
    assert len(operations) >= 2
    for operation in operations:
        answer = client.post("/api/graphql", {"query": operation, "variables": variables}, format="json")
        assert answer.status_code == 200, answer.content
        body = answer.json()
        assert "errors" not in body and all(body["data"].values()), (operation, body)
        assert "OperationError" not in str(body["data"]), body
