"""Money on contracts: ISO 4217 `currency` and `contract_value` in its minor unit (finer: a 422).

JPY has 0 minor digits, EUR 2, KWD 3. The currency defaults to the organization's (`org`: EUR,
`other_org`: USD). An unknown, lower-case, withdrawn or non-money code is a 422 naming `currency`.
"""

from decimal import Decimal

import pytest
from model_bakery import baker

from contracts.models import Contract, Counterparty
from tenancy.currencies import MINOR_UNITS, is_currency, minor_unit, quantize
from tenancy.models import Organization

URL = "/api/v1/contracts"


def body(counterparty, **overrides) -> dict:
    return {
        "reference": overrides.pop("reference", "M-1"),
        "name": "Fleet maintenance",
        "contract_type": "maintenance_agreement",
        "counterparty_id": counterparty.pk,
        "counterparty_role": "customer",
        **overrides,
    }


def create(client, counterparty, **overrides):
    return client.post(URL, body(counterparty, **overrides), format="json")


# --- the currency table and quantize (unit) ------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "digits"),
    [
        ("JPY", 0), ("KRW", 0), ("ISK", 0), ("CLP", 0), ("VND", 0), ("UGX", 0),
        ("EUR", 2), ("USD", 2), ("GBP", 2), ("CHF", 2), ("HUF", 2),
        ("KWD", 3), ("BHD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3), ("IQD", 3), ("LYD", 3),
        ("CLF", 4), ("UYW", 4),
    ],
)  # fmt: skip
def test_minor_units_follow_iso_4217(code, digits):
    assert is_currency(code)
    assert minor_unit(code) == digits


@pytest.mark.parametrize(
    "code",
    [
        "XXX",  # "no currency"
        "XTS",  # reserved for testing
        "XAU", "XAG", "XDR", "XSU", "XUA",  # no minor unit: not money a contract is priced in
        "HRK", "VEF", "MRO", "STD", "DEM", "FRF", "ZWL",  # withdrawn
        "ABC", "eur", "Eur", "EU", "EURO", "", " EUR",
    ],
)  # fmt: skip
def test_codes_that_are_not_contract_currencies(code):
    assert not is_currency(code)


def test_the_table_holds_only_well_formed_codes_with_sensible_minor_units():
    assert len(MINOR_UNITS) > 150
    for code, digits in MINOR_UNITS.items():
        assert len(code) == 3 and code.isascii() and code.isupper(), code
        assert digits in (0, 2, 3, 4), code


@pytest.mark.parametrize(
    ("amount", "code", "expected"),
    [
        ("100.5", "JPY", "101"),  # half-up, not half-even (which would give 100)
        ("102.5", "JPY", "103"),
        ("100.4999", "JPY", "100"),
        ("0.5", "JPY", "1"),
        ("1.2345", "KWD", "1.235"),  # half-even would give 1.234
        ("1.2344", "KWD", "1.234"),
        ("0.0005", "KWD", "0.001"),
        ("10.005", "EUR", "10.01"),
        ("10.015", "EUR", "10.02"),
        ("10.0049", "EUR", "10.00"),
        ("10", "EUR", "10.00"),
        ("7", "KWD", "7.000"),
        ("12.34", "JPY", "12"),
    ],
)
def test_quantize_rounds_half_up_to_the_minor_unit(amount, code, expected):
    result = quantize(Decimal(amount), code)
    assert str(result) == expected
    assert result.as_tuple().exponent == -minor_unit(code)


# --- through the API --------------------------------------------------------------------------------


@pytest.mark.django_db
class TestContractValueInTheMinorUnit:
    @pytest.mark.parametrize(
        ("currency", "value", "expected"),
        [
            ("JPY", "250000", "250000"),
            ("JPY", "100.0", "100"),
            ("EUR", "12000", "12000.00"),
            ("EUR", "10.5", "10.50"),
            ("EUR", "0", "0.00"),
            ("KWD", "1.234", "1.234"),
            ("KWD", "1.2340", "1.234"),
            ("KWD", "99", "99.000"),
        ],
    )
    def test_create_writes_the_minor_unit(self, api, counterparty, currency, value, expected):
        client = api("manager")
        response = create(client, counterparty, currency=currency, contract_value=value)
        assert response.status_code == 201, response.content
        created = response.json()
        assert created["currency"] == currency
        assert created["contract_value"] == expected
        assert Contract.objects.get(pk=created["id"]).contract_value == Decimal(expected)
        assert client.get(f"{URL}/{created['id']}").json()["contract_value"] == expected
        listed = client.get(f"{URL}?fields=contract_value,currency").json()
        assert listed == [{"id": created["id"], "contract_value": expected, "currency": currency}]

    @pytest.mark.parametrize(
        ("currency", "value", "places"),
        [("JPY", "100.5", 0), ("JPY", 100.5, 0), ("EUR", "10.005", 2), ("EUR", "0.001", 2), ("KWD", "1000.1235", 3)],
    )
    def test_a_value_finer_than_the_currency_is_422(self, api, counterparty, currency, value, places):
        # Found by an outside tester: it was rounded without a word (0.001 EUR stored as 0.00), while
        # hours with too many places are refused. A stated amount is refused the same way.
        response = create(api("manager"), counterparty, currency=currency, contract_value=value)
        assert response.status_code == 422, response.content
        assert response.json()["errors"] == {
            "contract_value": [f"Ensure that there are no more than {places} decimal places for {currency}."]
        }
        assert not Contract.objects.exists()

    def test_value_is_optional(self, api, counterparty):
        response = create(api("manager"), counterparty, currency="KWD")
        assert response.status_code == 201, response.content
        assert response.json()["contract_value"] is None

    @pytest.mark.parametrize("value", ["-0.01", "-1", "abc", "1.2.3", "NaN", "Infinity", "1e400"])
    def test_invalid_values_are_422_naming_contract_value(self, api, counterparty, value):
        response = create(api("manager"), counterparty, currency="EUR", contract_value=value)
        assert response.status_code == 422, response.content
        assert list(response.json()["errors"]) == ["contract_value"]
        assert not Contract.objects.exists()

    @pytest.mark.parametrize("value", ["1_000", "١٢٣", " 5", "5e2", "+5", ""])
    def test_a_value_that_is_not_a_plain_decimal_is_422(self, api, counterparty, value):
        # Found by an outside sweep: "1_000" was stored as 1000.00 and "١٢٣" as 123.00.
        client = api("manager")
        created = create(client, counterparty, currency="EUR", contract_value="5").json()
        response = client.patch(f"{URL}/{created['id']}", {"contract_value": value}, format="json")
        assert response.status_code == 422, response.content
        assert response.json()["errors"] == {"contract_value": ['Must be a plain decimal number such as "12.50".']}
        assert Contract.objects.get(pk=created["id"]).contract_value == Decimal("5")

    def test_patch_in_draft_holds_the_value_to_the_contracts_currency(self, api, counterparty):
        client = api("manager")
        created = create(client, counterparty, currency="KWD", contract_value="5").json()
        response = client.patch(f"{URL}/{created['id']}", {"contract_value": "1.2345"}, format="json")
        assert response.status_code == 422, response.content
        assert list(response.json()["errors"]) == ["contract_value"]
        assert Contract.objects.get(pk=created["id"]).contract_value == Decimal("5")
        response = client.patch(f"{URL}/{created['id']}", {"contract_value": "1.235"}, format="json")
        assert response.status_code == 200 and response.json()["contract_value"] == "1.235"

    def test_patch_of_the_currency_holds_the_value_to_the_new_currency(self, api, counterparty):
        client = api("manager")
        created = create(client, counterparty, currency="EUR", contract_value="10.50").json()
        response = client.patch(f"{URL}/{created['id']}", {"currency": "JPY"}, format="json")
        assert response.status_code == 422, response.content  # 10.50 is no amount of yen
        assert response.json()["errors"] == {
            "contract_value": ["Ensure that there are no more than 0 decimal places for JPY."]
        }
        assert Contract.objects.get(pk=created["id"]).currency == "EUR"
        response = client.patch(f"{URL}/{created['id']}", {"currency": "JPY", "contract_value": "1050"}, format="json")
        assert response.status_code == 200, response.content
        assert (response.json()["currency"], response.json()["contract_value"]) == ("JPY", "1050")

    def test_bug_a_value_beyond_the_column_is_422_not_500(self, api, counterparty):
        # 14 integer digits fit the column (18 digits, 4 decimals); the places are refused before any rounding.
        response = create(api("manager"), counterparty, currency="JPY", contract_value="99999999999999.5")
        assert response.status_code == 422, response.content
        assert "contract_value" in response.json()["errors"]


@pytest.mark.django_db
class TestCurrencyValidation:
    @pytest.mark.parametrize(
        "code", ["XXX", "eur", "ABC", "Eur", "EURO", "EU", "XAU", "XDR", "HRK", "VEF", "", 978, None, ["EUR"]]
    )
    def test_not_a_currency_is_422_naming_currency(self, api, counterparty, code):
        response = create(api("manager"), counterparty, currency=code, contract_value="1")
        assert response.status_code == 422, response.content
        payload = response.json()
        assert payload["message"] == "Validation failed."
        assert list(payload["errors"]) == ["currency"]
        assert not Contract.objects.exists()

    @pytest.mark.parametrize("code", ["XXX", "eur", "ABC"])
    def test_the_message_quotes_the_code(self, api, counterparty, code):
        response = create(api("manager"), counterparty, currency=code)
        assert response.json()["errors"]["currency"] == [f"{code!r} is not an ISO 4217 currency code."]

    @pytest.mark.parametrize("code", ["JPY", "EUR", "KWD", "USD", "CHF", "CLF"])
    def test_real_codes_are_accepted(self, api, counterparty, code):
        response = create(api("manager"), counterparty, currency=code)
        assert response.status_code == 201, response.content
        assert response.json()["currency"] == code

    def test_patch_with_an_invalid_code_is_422_and_changes_nothing(self, api, counterparty):
        client = api("manager")
        created = create(client, counterparty, currency="JPY", contract_value="7").json()
        response = client.patch(f"{URL}/{created['id']}", {"currency": "jpy"}, format="json")
        assert response.status_code == 422, response.content
        assert list(response.json()["errors"]) == ["currency"]
        contract = Contract.objects.get(pk=created["id"])
        assert (contract.currency, contract.contract_value) == ("JPY", Decimal("7"))


@pytest.mark.django_db
class TestDefaultCurrency:
    def test_defaults_to_the_organizations_currency(self, api, org, counterparty):
        response = create(api("manager"), counterparty, contract_value="10.5")
        assert response.status_code == 201, response.content
        created = response.json()
        assert created["currency"] == org.default_currency == "EUR"
        assert created["contract_value"] == "10.50"
        assert Contract.objects.get(pk=created["id"]).currency == "EUR"

    def test_each_organization_has_its_own_default(self, api, other_org):
        theirs = baker.make(Counterparty, organization=other_org)
        response = create(api("manager", org=other_org), theirs, contract_value="0.1")
        assert response.status_code == 201, response.content
        assert response.json()["currency"] == "USD"
        assert response.json()["contract_value"] == "0.10"

    def test_the_default_currency_holds_the_places(self, api, make_member):
        yen = Organization.objects.create(
            slug="nippon", name="Nippon Service", default_currency="JPY", default_time_zone="Asia/Tokyo"
        )
        party = baker.make(Counterparty, organization=yen)
        response = create(api("manager", org=yen), party, contract_value="100.5")
        assert response.status_code == 422, response.content
        assert response.json()["errors"]["contract_value"] == [
            "Ensure that there are no more than 0 decimal places for JPY."
        ]
        response = create(api("manager", org=yen), party, contract_value="100")
        assert (response.json()["currency"], response.json()["contract_value"]) == ("JPY", "100")

    def test_an_explicit_currency_wins_over_the_default(self, api, counterparty):
        response = create(api("manager"), counterparty, currency="KWD", contract_value="1.234")
        assert response.status_code == 201, response.content
        assert (response.json()["currency"], response.json()["contract_value"]) == ("KWD", "1.234")
