"""`/api/v1/sla_rules`: the shared API conventions, defaults, validation (bands, overlaps,
JSON Schemas with JSON paths), versioning (edit in place while a draft, `amend` afterwards), and
which version a job's clocks use."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from breaches.penalties import cap_in_minor_unit
from contracts.models import Contract
from events.models import Event
from slas.models import SlaRule
from tests.api_base import WritableResourceAPITests
from tests.contracts.factories import make_contract
from tests.slas.factories import RULES_FROM, ams, iso, make_calendar, make_rule
from tests.workorders.factories import make_job
from workorders.models import SlaClock

URL = "/api/v1/sla_rules"
PAST_DRAFT = ["pending_approval", "scheduled", "active", "suspended"]
APPROVED = ["scheduled", "active", "suspended"]
CLOSED = ["expired", "terminated", "renewed"]
ESCALATION = [
    {"at_percent": 50, "name": "Team lead", "notify": ["lead@example.com"]},
    {"at_percent": 90, "name": "Service manager", "notify": ["manager@example.com", "ops"]},
]
PENALTY = {"fixed_amount": "100.00", "per_unit_amount": "25", "unit_minutes": 30, "per_breach_cap": "500"}


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


class TestSlaRulesAPI(WritableResourceAPITests):
    url = URL
    update_data = {"name": "Critical response (revised)", "target_minutes": 90, "priorities": ["critical", "high"]}
    default_fields = [
        "id", "contract", "name", "metric", "priorities", "target_minutes", "calendar", "active",
        "effective_from", "effective_to", "created_at", "updated_at",
    ]  # fmt: skip
    sort_keys = ["name", "metric", "target_minutes", "effective_from", "created_at"]
    detail_actions = [("amend", {"target_minutes": 30})]
    # 1 count, 2 the page's ids (issue 15), 3 the page joined with contract, calendar, previous and next version.
    list_queries = 3
    filter_cases = [
        ("name", "Critical response", ["a"]),
        ("metric", "resolution", ["b"]),
        ("metric", "response,on_site", ["a", "c"]),
        ("metric", "!response", ["b", "c"]),
        ("target_minutes", ">=240", ["b", "c"]),
        ("target_minutes", ">60<=240", ["c"]),
        ("active", "false", ["c"]),
        ("active", "true", ["a", "b"]),
        ("effective_from", ">=2026-02-01", ["b"]),
        ("effective_to", "", ["a", "b"]),
        ("effective_to", "!", ["c"]),
        ("effective_to", "<2026-07-01", ["c"]),
        ("created_at", ">2000-01-01", ["a", "b", "c"]),
        ("contract_id", lambda objs: str(objs["a"].contract_id), ["a", "b"]),
        ("calendar_id", lambda objs: str(objs["a"].calendar_id), ["a"]),
        ("calendar_id", "", ["b", "c"]),
        ("ids", "a,c", ["a", "c"]),
    ]
    malformed_filters = [
        ("metric", "speed"),
        ("target_minutes", "abc"),
        ("active", "maybe"),
        ("effective_from", ">2026-13-01"),
        ("contract_id", "x"),
        ("calendar_id", "!x"),
    ]

    @pytest.fixture(autouse=True)
    def _create_data(self, org):
        self.contract = make_contract(org)  # a draft starting 2026-01-01 in Europe/Amsterdam
        self.calendar = make_calendar(org, name="Office hours")
        self.create_data = {
            "contract_id": self.contract.pk,
            "name": "Critical response",
            "metric": "response",
            "priorities": ["critical", "high"],
            "target_minutes": 120,
            "calendar_id": self.calendar.pk,
            "escalation": ESCALATION,
            "penalty": PENALTY,
            "monthly_penalty_cap": "500",
        }

    def factory(self, org, **overrides):
        return make_rule(make_contract(org), **overrides)

    def filter_objects(self, org):
        one, two = make_contract(org), make_contract(org)
        calendar = make_calendar(org)
        return {
            "a": make_rule(one, name="Critical response", priorities=["critical"], target_minutes=60,
                           calendar=calendar),
            "b": make_rule(one, name="Resolution", metric="resolution", target_minutes=480,
                           effective_from=ams(2026, 3, 1)),
            "c": make_rule(two, name="On site", metric="on_site", target_minutes=240, active=False,
                           effective_to=ams(2026, 6, 1)),
        }  # fmt: skip

    def check_created(self, body, data):
        assert body["contract"] == {"id": self.contract.pk, "name": self.contract.name}
        assert body["calendar"] == {"id": self.calendar.pk, "name": "Office hours"}
        assert body["pause_on_hold"] is False  # a response rule
        assert body["effective_from"] == "2025-12-31T23:00:00Z"  # the draft's start date, in its time zone
        assert body["effective_to"] is None and body["active"] is True
        assert body["escalation"] == ESCALATION and body["penalty"] == PENALTY
        assert body["monthly_penalty_cap"] == "500.00"  # EUR
        assert body["previous_version"] is None and body["next_version"] is None
        assert Event.objects.filter(type="sla_rule.created", object_id=body["id"]).exists()


def rule_body(contract, **overrides) -> dict:
    return {
        "contract_id": contract.pk,
        "name": "Rule",
        "metric": "response",
        "priorities": ["critical"],
        "target_minutes": 60,
        **overrides,
    }


@pytest.mark.django_db
class TestRuleDefaults:
    @pytest.mark.parametrize(("metric", "pauses"), [("response", False), ("on_site", False), ("resolution", True)])
    def test_pause_on_hold_defaults_by_metric(self, api, org, metric, pauses):
        client = api("manager")
        contract = make_contract(org)
        body = client.post(URL, rule_body(contract, metric=metric), format="json").json()
        assert body["pause_on_hold"] is pauses
        body = client.post(
            URL, rule_body(contract, metric=metric, priorities=["low"], pause_on_hold=not pauses), format="json"
        ).json()
        assert body["pause_on_hold"] is (not pauses)

    def test_effective_from_is_the_drafts_start_date_in_its_time_zone(self, api, org):
        contract = make_contract(org, start_date=dt.date(2026, 7, 1), time_zone="America/New_York")
        body = api("manager").post(URL, rule_body(contract), format="json").json()
        assert body["effective_from"] == "2026-07-01T04:00:00Z"

    @pytest.mark.parametrize("status", APPROVED)
    def test_effective_from_is_now_past_draft(self, api, org, status):
        contract = make_contract(org, status=status)
        before = timezone.now()
        body = api("manager").post(URL, rule_body(contract), format="json").json()
        assert before <= parse(body["effective_from"]) <= timezone.now()

    def test_explicit_effective_from_wins(self, api, org):
        contract = make_contract(org, status="active")
        body = api("manager").post(URL, rule_body(contract, effective_from="2026-02-01T00:00:00Z"), format="json")
        assert body.json()["effective_from"] == "2026-02-01T00:00:00Z"

    def test_calendar_is_optional_and_null_means_24x7(self, api, org):
        body = api("manager").post(URL, rule_body(make_contract(org), calendar_id=None), format="json").json()
        assert body["calendar"] is None


@pytest.mark.django_db
class TestRuleValidation:
    @pytest.mark.parametrize("target", [0, -5, 1.5, "abc", None, 525601])
    def test_target_minutes_is_a_whole_number_of_at_least_one(self, api, org, target):
        response = api("manager").post(URL, rule_body(make_contract(org), target_minutes=target), format="json")
        assert response.status_code == 422
        assert set(response.json()["errors"]) == {"target_minutes"}

    def test_a_one_minute_target_is_fine(self, api, org):
        response = api("manager").post(URL, rule_body(make_contract(org), target_minutes=1), format="json")
        assert response.status_code == 201

    @pytest.mark.parametrize("priorities", [[], ["urgent"], ["high", "high"], "high", None])
    def test_priorities_are_a_non_empty_list_of_the_five_bands(self, api, org, priorities):
        response = api("manager").post(URL, rule_body(make_contract(org), priorities=priorities), format="json")
        assert response.status_code == 422
        assert all(key.startswith("priorities") for key in response.json()["errors"])

    def test_all_five_bands(self, api, org):
        every = ["critical", "high", "medium", "low", "planned"]
        response = api("manager").post(URL, rule_body(make_contract(org), priorities=every), format="json")
        assert response.status_code == 201 and response.json()["priorities"] == every

    def test_metric_must_be_known(self, api, org):
        response = api("manager").post(URL, rule_body(make_contract(org), metric="speed"), format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"metric"}

    def test_a_priority_not_among_the_choices_names_them_in_a_list_too(self, api, org):
        # A ChoiceField as a list's child (priorities) and as a field (metric) say the same.
        body = rule_body(make_contract(org), priorities=["critical", "urgent"], metric="speed")
        response = api("manager").post(URL, body, format="json")
        assert response.status_code == 422, response.content
        assert response.json()["errors"] == {
            "priorities[1]": ['"urgent" is not a valid choice: one of critical, high, medium, low, planned.'],
            "metric": ['"speed" is not a valid choice: one of response, on_site, resolution.'],
        }

    def test_required_fields(self, api):
        response = api("manager").post(URL, {}, format="json")
        assert response.status_code == 422
        assert {"contract_id", "name", "metric", "priorities", "target_minutes"} <= set(response.json()["errors"])

    def test_other_organizations_contract_and_calendar_are_422_naming_the_field(self, api, org, other_org):
        theirs = make_contract(other_org)
        their_calendar = make_calendar(other_org)
        response = api("manager").post(URL, rule_body(make_contract(org), calendar_id=their_calendar.pk), format="json")
        assert response.status_code == 422
        assert response.json()["errors"] == {"calendar_id": [f"Calendar {their_calendar.pk} does not exist."]}
        response = api("manager").post(URL, rule_body(theirs), format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"contract_id"}

    def test_effective_to_must_follow_effective_from(self, api, org):
        client = api("manager")
        contract = make_contract(org, status="active")
        body = rule_body(contract, effective_from="2026-03-01T00:00:00Z", effective_to="2026-03-01T00:00:00Z")
        response = client.post(URL, body, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"effective_to"}

    def test_effective_to_before_the_defaulted_effective_from_is_422_not_a_conflict(self, api, org):
        # effective_from defaults to now past draft; an effective_to before it is invalid input.
        response = api("manager").post(
            URL, rule_body(make_contract(org, status="active"), effective_to="2026-02-01T00:00:00Z"), format="json"
        )
        assert response.status_code == 422, response.content
        assert set(response.json()["errors"]) == {"effective_to"}
        assert not SlaRule.objects.exists()

    def test_monthly_penalty_cap_is_a_non_negative_amount(self, api, org):
        client = api("manager")
        for cap in ("-1", "abc", "1.23456"):
            response = client.post(URL, rule_body(make_contract(org), monthly_penalty_cap=cap), format="json")
            assert response.status_code == 422 and set(response.json()["errors"]) == {"monthly_penalty_cap"}, cap
        contract = make_contract(org, currency="JPY")
        response = client.post(URL, rule_body(contract, monthly_penalty_cap="1000.4"), format="json")
        assert response.status_code == 201 and response.json()["monthly_penalty_cap"] == "1000"  # JPY: no minor unit

    @pytest.mark.parametrize(
        ("currency", "cap", "shown"),
        [("JPY", "2500.9", "2500"), ("KWD", "3.0009", "3.000"), ("EUR", "99.995", "99.99"), ("EUR", "500", "500.00")],
    )
    def test_the_monthly_penalty_cap_reads_as_it_is_enforced(self, api, org, currency, cap, shown):
        """Found by an outside tester: a cap finer than the minor unit read rounded half-up (JPY
        2500.9 read 2501) while the penalties are held to it rounded down (2500,
        `breaches.penalties.cap_in_minor_unit`). Every read of the rule now shows what is enforced."""
        client = api("manager")
        contract = make_contract(org, currency=currency)
        created = client.post(URL, rule_body(contract, monthly_penalty_cap=cap), format="json")
        assert created.status_code == 201 and created.json()["monthly_penalty_cap"] == shown, created.content
        pk = created.json()["id"]
        assert str(cap_in_minor_unit(SlaRule.objects.get(pk=pk).monthly_penalty_cap, currency)) == shown
        assert client.get(f"{URL}/{pk}").json()["monthly_penalty_cap"] == shown
        listed = client.get(f"{URL}?fields=monthly_penalty_cap").json()
        assert listed == [{"id": pk, "monthly_penalty_cap": shown}]
        csv = b"".join(client.get(f"{URL}?format=csv&fields=id,monthly_penalty_cap").streaming_content).decode()
        assert csv.splitlines()[1:] == [f"{pk},{shown}"]


@pytest.mark.django_db
class TestOverlaps:
    def post(self, client, contract, **overrides):
        return client.post(URL, rule_body(contract, **overrides), format="json")

    def test_same_metric_overlapping_band_and_period_is_422(self, api, org):
        client = api("manager")
        contract = make_contract(org)
        first = self.post(client, contract, priorities=["critical", "high"]).json()
        response = self.post(client, contract, priorities=["high", "medium"], name="Second")
        assert response.status_code == 422
        body = response.json()
        assert str(first["id"]) in body["message"] and "high" in body["message"]
        assert set(body["errors"]) == {"priorities"}

    def test_what_does_not_overlap_is_fine(self, api, org):
        client = api("manager")
        contract = make_contract(org)
        assert self.post(client, contract, priorities=["critical"]).status_code == 201
        assert self.post(client, contract, priorities=["high"]).status_code == 201  # another band
        assert self.post(client, contract, metric="resolution").status_code == 201  # another metric
        assert self.post(client, make_contract(org)).status_code == 201  # another contract
        assert self.post(client, contract, active=False).status_code == 201  # inactive

    def test_consecutive_periods_do_not_overlap(self, api, org):
        client = api("manager")
        contract = make_contract(org)
        first = self.post(client, contract, effective_from="2026-01-01T00:00:00Z", effective_to="2026-04-01T00:00:00Z")
        assert first.status_code == 201
        later = self.post(client, contract, effective_from="2026-04-01T00:00:00Z")
        assert later.status_code == 201
        earlier = self.post(
            client, contract, effective_from="2025-06-01T00:00:00Z", effective_to="2026-01-01T00:00:01Z"
        )
        assert earlier.status_code == 422

    def test_an_open_ended_rule_overlaps_every_later_period(self, api, org):
        client = api("manager")
        contract = make_contract(org)
        assert self.post(client, contract, effective_from="2026-01-01T00:00:00Z").status_code == 201
        response = self.post(client, contract, effective_from="2030-01-01T00:00:00Z")
        assert response.status_code == 422

    def test_activating_an_overlapping_rule_is_422(self, api, org):
        client = api("manager")
        contract = make_contract(org)
        self.post(client, contract)
        inactive = self.post(client, contract, active=False).json()
        response = client.patch(f"{URL}/{inactive['id']}", {"active": True}, format="json")
        assert response.status_code == 422
        assert SlaRule.objects.get(pk=inactive["id"]).active is False


@pytest.mark.django_db
class TestConfigurationSchemas:
    def test_schemas_are_served_without_a_token(self, anon):
        for name in ("escalation", "penalty_clause"):
            response = anon.get(f"/api/v1/schemas/{name}")
            assert response.status_code == 200
            schema = response.json()
            assert schema["$id"] == f"/api/v1/schemas/{name}"
            assert schema["$schema"].startswith("https://json-schema.org/")
        assert anon.get("/api/v1/schemas/nothing").status_code in (401, 404)

    @pytest.mark.parametrize(
        ("escalation", "path"),
        [
            ([{"at_percent": 0, "name": "Lead"}], "escalation[0].at_percent"),
            ([{"at_percent": 101, "name": "Lead"}], "escalation[0].at_percent"),
            ([{"at_percent": 50.5, "name": "Lead"}], "escalation[0].at_percent"),
            ([{"at_percent": 50, "name": "Lead"}, {"at_percent": 80}], "escalation[1]"),
            ([{"at_percent": 50, "name": ""}], "escalation[0].name"),
            ([{"at_percent": 50, "name": "Lead", "notify": ["a@example.com", 7]}], "escalation[0].notify[1]"),
            ([{"at_percent": 50, "name": "Lead", "notify": "a@example.com"}], "escalation[0].notify"),
            ([{"at_percent": 50, "name": "Lead", "sms": True}], "escalation[0]"),
            ([{"at_percent": 50, "name": "Lead"}, {"at_percent": 50, "name": "Manager"}], "escalation[1].at_percent"),
            ({"at_percent": 50}, "escalation"),
        ],
    )
    def test_invalid_escalation_is_422_at_its_json_path(self, api, org, escalation, path):
        response = api("manager").post(URL, rule_body(make_contract(org), escalation=escalation), format="json")
        assert response.status_code == 422
        assert list(response.json()["errors"]) == [path]

    @pytest.mark.parametrize(
        ("penalty", "path"),
        [
            ({"fixed_amount": "-5"}, "penalty.fixed_amount"),
            ({"fixed_amount": -5}, "penalty.fixed_amount"),
            ({"fixed_amount": "ten"}, "penalty.fixed_amount"),
            ({"fixed_amount": "1.23456"}, "penalty.fixed_amount"),
            ({"per_unit_amount": "10"}, "penalty"),  # needs unit_minutes
            ({"per_unit_amount": "10", "unit_minutes": 0}, "penalty.unit_minutes"),
            ({"per_unit_amount": "10", "unit_minutes": "30"}, "penalty.unit_minutes"),
            ({"per_breach_cap": "-1"}, "penalty.per_breach_cap"),
            ({"fine": "10"}, "penalty"),
            (["100"], "penalty"),
        ],
    )
    def test_invalid_penalty_is_422_at_its_json_path(self, api, org, penalty, path):
        response = api("manager").post(URL, rule_body(make_contract(org), penalty=penalty), format="json")
        assert response.status_code == 422
        assert list(response.json()["errors"]) == [path]

    def test_valid_configurations(self, api, org):
        client = api("manager")
        for penalty in (None, {}, {"fixed_amount": 50}, {**PENALTY, "per_breach_cap": None}):
            body = rule_body(make_contract(org), penalty=penalty, escalation=ESCALATION)
            response = client.post(URL, body, format="json")
            assert response.status_code == 201, (penalty, response.content)
            assert response.json()["penalty"] == penalty

    def test_every_fault_is_reported_at_once(self, api, org):
        body = rule_body(
            make_contract(org),
            escalation=[{"at_percent": 0, "name": "A"}, {"at_percent": 50}],
            penalty={"fixed_amount": "-1", "unit_minutes": 0},
        )
        response = api("manager").post(URL, body, format="json")
        assert set(response.json()["errors"]) == {
            "escalation[0].at_percent",
            "escalation[1]",
            "penalty.fixed_amount",
            "penalty.unit_minutes",
        }

    def test_patch_is_validated_too(self, api, org):
        rule = make_rule(make_contract(org))
        response = api("manager").patch(
            f"{URL}/{rule.pk}", {"escalation": [{"at_percent": 200, "name": "x"}]}, format="json"
        )
        assert response.status_code == 422 and list(response.json()["errors"]) == ["escalation[0].at_percent"]


@pytest.mark.django_db
class TestEditingTerms:
    def test_a_drafts_rule_is_edited_in_place(self, api, org):
        rule = make_rule(make_contract(org))
        response = api("manager").patch(
            f"{URL}/{rule.pk}", {"target_minutes": 45, "penalty": {"fixed_amount": "10"}}, format="json"
        )
        assert response.status_code == 200
        assert response.json()["target_minutes"] == 45 and response.json()["next_version"] is None
        assert SlaRule.objects.count() == 1
        event = Event.objects.get(type="sla_rule.updated", object_id=rule.pk)
        assert event.payload["changes"]["target_minutes"] == {"before": 120, "after": 45}

    @pytest.mark.parametrize("status", APPROVED)
    def test_terms_past_draft_are_409_pointing_to_amend(self, api, org, status):
        rule = make_rule(make_contract(org, status=status))
        client = api("manager")
        for change in ({"target_minutes": 45}, {"priorities": ["low"]}, {"active": False}, {"calendar_id": None}):
            if "calendar_id" in change:
                rule.calendar = make_calendar(org)
                rule.save()
            response = client.patch(f"{URL}/{rule.pk}", change, format="json")
            assert response.status_code == 409, change
            body = response.json()
            assert f"/api/v1/sla_rules/{rule.pk}/amend" in body["message"]
            assert list(body["errors"]) == [next(iter(change)).removesuffix("_id")]
        rule.refresh_from_db()
        assert rule.target_minutes == 120 and rule.active

    @pytest.mark.parametrize("status", PAST_DRAFT)
    def test_the_name_stays_editable_and_unchanged_terms_are_no_conflict(self, api, org, status):
        rule = make_rule(make_contract(org, status=status))
        response = api("manager").patch(
            f"{URL}/{rule.pk}", {"name": "Renamed", "target_minutes": 120, "metric": "response"}, format="json"
        )
        assert response.status_code == 200, response.content
        assert response.json()["name"] == "Renamed"

    def test_rules_wait_with_the_contract_pending_approval(self, api, org):
        # The approvers decide on the rules as they stand: none is added, amended or re-termed
        # between the approvals (found by an outside sweep); the name stays editable.
        contract = make_contract(org, status="pending_approval")
        rule = make_rule(contract)
        client = api("manager")
        for response in (
            client.post(URL, rule_body(contract, priorities=["low"]), format="json"),
            client.post(f"{URL}/{rule.pk}/amend", {"target_minutes": 5}, format="json"),
            client.patch(f"{URL}/{rule.pk}", {"target_minutes": 5}, format="json"),
        ):
            assert response.status_code == 409, response.content
            assert "pending approval" in response.json()["message"]
        assert SlaRule.objects.count() == 1
        assert client.patch(f"{URL}/{rule.pk}", {"name": "Renamed"}, format="json").status_code == 200

    @pytest.mark.parametrize("status", CLOSED)
    def test_rules_of_a_closed_contract_do_not_change(self, api, org, status):
        contract = make_contract(org, status=status)
        rule = make_rule(contract)
        client = api("manager")
        response = client.patch(f"{URL}/{rule.pk}", {"name": "Too late"}, format="json")
        assert response.status_code == 409 and status in response.json()["message"]
        assert client.post(URL, rule_body(contract, priorities=["low"]), format="json").status_code == 409
        assert client.post(f"{URL}/{rule.pk}/amend", {"target_minutes": 5}, format="json").status_code == 409

    @pytest.mark.parametrize("status", ["draft", "active"])
    def test_a_rule_cannot_move_to_another_contract(self, api, org, status):
        rule = make_rule(make_contract(org, status=status))
        elsewhere = make_contract(org, status="active")
        response = api("manager").patch(f"{URL}/{rule.pk}", {"contract_id": elsewhere.pk}, format="json")
        assert response.status_code == 422, response.content
        assert set(response.json()["errors"]) == {"contract_id"}
        rule.refresh_from_db()
        assert rule.contract_id != elsewhere.pk
        # naming its own contract is no change
        same = api("manager").patch(f"{URL}/{rule.pk}", {"contract_id": rule.contract_id}, format="json")
        assert same.status_code == 200

    def test_an_operator_cannot_write_rules(self, api, org):
        rule = make_rule(make_contract(org, status="active"))
        client = api("operator")
        assert client.post(f"{URL}/{rule.pk}/amend", {"target_minutes": 5}, format="json").status_code == 403
        assert client.get(f"{URL}/{rule.pk}").status_code == 200


@pytest.mark.django_db
class TestAmend:
    @pytest.fixture
    def rule(self, org):
        calendar = make_calendar(org, name="Office")
        return make_rule(
            make_contract(org, status="active"),
            name="High response",
            calendar=calendar,
            escalation=ESCALATION,
            penalty=PENALTY,
            monthly_penalty_cap="500",
        )

    def test_amend_ends_the_rule_and_creates_its_successor(self, api, rule):
        client = api("manager")
        response = client.post(
            f"{URL}/{rule.pk}/amend",
            {"target_minutes": 60, "effective_from": "2026-06-01T00:00:00Z", "name": "High response v2"},
            format="json",
        )
        assert response.status_code == 201, response.content
        successor = response.json()
        assert response["Location"].endswith(f"{URL}/{successor['id']}")
        assert successor["previous_version"]["id"] == rule.pk
        assert successor["effective_from"] == "2026-06-01T00:00:00Z" and successor["effective_to"] is None
        assert successor["target_minutes"] == 60 and successor["name"] == "High response v2"
        # everything not changed is carried over
        assert successor["calendar"]["id"] == rule.calendar_id and successor["priorities"] == rule.priorities
        assert successor["escalation"] == ESCALATION and successor["penalty"] == PENALTY
        assert successor["monthly_penalty_cap"] == "500.00" and successor["pause_on_hold"] is False
        assert successor["contract"]["id"] == rule.contract_id
        old = client.get(f"{URL}/{rule.pk}").json()
        assert old["effective_to"] == "2026-06-01T00:00:00Z" and old["target_minutes"] == 120
        assert old["next_version"]["id"] == successor["id"]
        event = Event.objects.get(type="sla_rule.amended")
        assert event.object_id == successor["id"] and event.payload["previous_version"] == rule.pk

    def test_effective_from_defaults_to_now(self, api, rule):
        before = timezone.now()
        successor = api("manager").post(f"{URL}/{rule.pk}/amend", {"target_minutes": 60}, format="json").json()
        assert before <= parse(successor["effective_from"]) <= timezone.now()
        rule.refresh_from_db()
        assert rule.effective_to == parse(successor["effective_from"])

    def test_effective_from_must_fall_within_the_rules_period(self, api, rule):
        client = api("manager")
        for instant in ("2025-12-31T23:00:00Z", "2025-06-01T00:00:00Z"):  # at and before its start
            response = client.post(f"{URL}/{rule.pk}/amend", {"effective_from": instant}, format="json")
            assert response.status_code == 422 and set(response.json()["errors"]) == {"effective_from"}, instant
        rule.effective_to = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
        rule.save()
        response = client.post(f"{URL}/{rule.pk}/amend", {"effective_from": "2026-05-01T00:00:00Z"}, format="json")
        assert response.status_code == 422
        assert not SlaRule.objects.exclude(pk=rule.pk).exists()

    def test_an_amended_rule_is_amended_through_its_successor(self, api, rule):
        client = api("manager")
        successor = client.post(
            f"{URL}/{rule.pk}/amend", {"effective_from": "2026-06-01T00:00:00Z"}, format="json"
        ).json()
        response = client.post(f"{URL}/{rule.pk}/amend", {"effective_from": "2026-07-01T00:00:00Z"}, format="json")
        assert response.status_code == 409 and str(successor["id"]) in response.json()["message"]
        third = client.post(f"{URL}/{successor['id']}/amend", {"effective_from": "2026-07-01T00:00:00Z"}, format="json")
        assert third.status_code == 201 and third.json()["previous_version"]["id"] == successor["id"]

    @pytest.mark.parametrize(
        "body",
        [
            {"effective_from": "2026-06-01T00:00:00Z", "effective_to": "2026-03-01T00:00:00Z"},
            # effective_from defaults to now: an end in the past (after the rule's start) is before it
            {"effective_to": "2026-03-01T00:00:00Z"},
        ],
    )
    def test_the_successors_effective_to_must_follow_its_start(self, api, rule, body):
        response = api("manager").post(f"{URL}/{rule.pk}/amend", body, format="json")
        assert response.status_code == 422, response.content
        assert set(response.json()["errors"]) == {"effective_to"}
        rule.refresh_from_db()
        assert rule.effective_to is None and not hasattr(rule, "next_version")

    def test_an_amendment_that_overlaps_another_rule_is_422_and_changes_nothing(self, api, org, rule):
        make_rule(rule.contract, priorities=["low"])
        response = api("manager").post(
            f"{URL}/{rule.pk}/amend",
            {"priorities": ["high", "low"], "effective_from": "2026-06-01T00:00:00Z"},
            format="json",
        )
        assert response.status_code == 422 and "low" in response.json()["message"]
        rule.refresh_from_db()
        assert rule.effective_to is None and SlaRule.objects.count() == 2

    def test_the_contract_cannot_be_amended(self, api, org, rule):
        response = api("manager").post(f"{URL}/{rule.pk}/amend", {"contract_id": make_contract(org).pk}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"contract_id"}

    def test_deactivating_through_amend(self, api, rule):
        successor = api("manager").post(
            f"{URL}/{rule.pk}/amend", {"active": False, "effective_from": "2026-06-01T00:00:00Z"}, format="json"
        )
        assert successor.status_code == 201 and successor.json()["active"] is False


def clocks_of(client, job) -> list[dict]:
    return client.get(f"/api/v1/work_orders/{job.pk}").json()["sla_clocks"]


@pytest.mark.django_db
class TestVersionsAndJobs:
    """A job's clocks use the rule version in force at its reported_at (24x7 rules here)."""

    def test_jobs_keep_the_version_in_force_when_they_were_reported(self, api, org):
        contract = make_contract(org, status="active")
        rule = make_rule(contract, target_minutes=120)
        client = api("manager")
        early = make_job(org, contract=contract, reported_at=dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC))
        late = make_job(org, contract=contract, reported_at=dt.datetime(2026, 6, 8, 9, 0, tzinfo=dt.UTC))
        assert [c["due_at"] for c in clocks_of(client, late)] == ["2026-06-08T11:00:00Z"]
        successor = client.post(
            f"{URL}/{rule.pk}/amend", {"target_minutes": 30, "effective_from": "2026-06-01T00:00:00Z"}, format="json"
        ).json()
        # reported before the amendment: the old version, untouched
        [clock] = clocks_of(client, early)
        assert clock["sla_rule"]["id"] == rule.pk and clock["target_minutes"] == 120
        assert clock["due_at"] == "2026-05-04T11:00:00Z"
        # reported after it (the amendment is back-dated): its clock moves to the successor, one
        # clock per rule (a cancelled one beside it past due would be a second breach)
        [moved] = clocks_of(client, late)
        assert moved["sla_rule"]["id"] == successor["id"] and moved["target_minutes"] == 30
        assert moved["due_at"] == "2026-06-08T09:30:00Z"
        # a job reported now under the successor
        fresh = make_job(org, contract=contract, reported_at=dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC))
        assert [c["sla_rule"]["id"] for c in clocks_of(client, fresh)] == [successor["id"]]

    def test_a_back_dated_version_measures_a_settled_job_once(self, api, org):
        # Found by an outside sweep: the stopped clock of the old version stayed beside a new one,
        # and the job had two breaches (and two penalties).
        from breaches.models import Breach

        contract = make_contract(org, status="active")
        rule = make_rule(contract, target_minutes=60)
        reported = dt.datetime(2026, 6, 8, 9, 0, tzinfo=dt.UTC)
        job = make_job(org, contract=contract, reported_at=reported, responded_at=reported + dt.timedelta(hours=2))
        [breach] = Breach.objects.filter(work_order=job)
        client = api("manager")
        for target, effective_from in ((30, "2026-06-01T00:00:00Z"), (240, "2026-06-02T00:00:00Z")):
            successor = client.post(
                f"{URL}/{rule.pk}/amend", {"target_minutes": target, "effective_from": effective_from}, format="json"
            )
            assert successor.status_code == 201, successor.content
            [clock] = clocks_of(client, job)
            assert (clock["sla_rule"]["id"], clock["target_minutes"]) == (successor.json()["id"], target)
            assert clock["stopped_at"] == "2026-06-08T11:00:00Z"
            assert list(Breach.objects.filter(work_order=job)) == [breach]  # the settled breach stands
            rule = SlaRule.objects.get(pk=successor.json()["id"])
        assert clock["state"] == "met"  # loosened: met under the version in force, the breach to waive

    def test_a_new_rule_with_a_past_effective_from_clocks_the_jobs_reported_since(self, api, org):
        contract = make_contract(org, status="active")
        before = make_job(org, contract=contract, reported_at=dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.UTC))
        after = make_job(org, contract=contract, reported_at=dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC))
        closed = make_job(org, contract=contract, reported_at=dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC))
        closed.status = "closed"
        closed.save()
        response = api("manager").post(
            URL,
            rule_body(contract, priorities=["high"], target_minutes=90, effective_from="2026-03-01T00:00:00Z"),
            format="json",
        )
        assert response.status_code == 201
        assert response["X-Recomputed-Clocks"] == "1"  # issue 8: the retroactive start is counted
        assert not SlaClock.objects.filter(work_order=before).exists()
        assert SlaClock.objects.get(work_order=after).due_at == dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.UTC)
        assert not SlaClock.objects.filter(work_order=closed).exists()  # closed jobs are history

    def test_a_retroactive_rule_counts_only_its_own_clocks_in_its_band(self, api, org):
        contract = make_contract(org, status="active")
        make_rule(contract, metric="resolution", priorities=["high", "low"], target_minutes=600)
        in_band = make_job(org, contract=contract, priority="high", reported_at=timezone.now() - dt.timedelta(hours=2))
        hour_ago = timezone.now() - dt.timedelta(hours=1)
        out_of_band = make_job(org, contract=contract, priority="low", reported_at=hour_ago)
        past = (timezone.now() - dt.timedelta(hours=3)).isoformat()
        response = api("manager").post(
            URL, rule_body(contract, priorities=["high"], effective_from=past), format="json"
        )
        assert response.status_code == 201, response.content
        assert response["X-Recomputed-Clocks"] == "1"
        rule_id = response.json()["id"]
        assert SlaClock.objects.get(work_order=in_band, rule_id=rule_id).started_at == in_band.reported_at
        assert not SlaClock.objects.filter(work_order=out_of_band, rule_id=rule_id).exists()

    def test_without_effective_from_a_rule_covers_work_reported_from_now_on(self, api, org):
        contract = make_contract(org, status="active")
        job = make_job(org, contract=contract, priority="critical", reported_at=timezone.now() - dt.timedelta(hours=1))
        response = api("manager").post(URL, rule_body(contract), format="json")
        assert response.status_code == 201 and response["X-Recomputed-Clocks"] == "0"
        assert not SlaClock.objects.filter(work_order=job).exists()

    def test_renaming_a_rule_recomputes_no_clock(self, api, org):
        contract = make_contract(org, status="active")
        rule = make_rule(contract)
        make_job(org, contract=contract)
        before = list(SlaClock.objects.values("pk", "updated_at"))
        assert api("manager").patch(f"{URL}/{rule.pk}", {"name": "New name"}, format="json").status_code == 200
        assert list(SlaClock.objects.values("pk", "updated_at")) == before

    def test_rules_from_the_draft_apply_once_the_contract_is_active(self, org):
        contract = make_contract(org, start_date=dt.date(2026, 1, 1))
        rule = make_rule(contract, effective_from=contract.start_of_day(contract.start_date))
        Contract.objects.filter(pk=contract.pk).update(status="active")
        job = make_job(org, contract=Contract.objects.get(pk=contract.pk), reported_at=RULES_FROM)
        assert SlaClock.objects.get(work_order=job).rule == rule
        assert iso(SlaClock.objects.get(work_order=job).started_at) == "2025-12-31T23:00:00Z"
