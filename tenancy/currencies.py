"""ISO 4217 currencies with their minor units (list one, current codes).

Only codes that are money with a defined minor unit are accepted: the funds and precious-metal
codes without one (XAU, XDR, ...) are not valid contract currencies. `quantize` rounds half-up
to the currency's minor unit (JPY 0, EUR 2, KWD 3), as DESIGN §6 asks for penalties.

Money columns hold 18 digits, 4 of them decimals (SQLite keeps 15 significant digits of them). An
amount a contract states (a charge, a rate, a cap, a posted penalty) is at most `MONEY_LIMIT`; an
amount the service computes from them (a per-unit penalty over a long overage, a rate times the
hours, a charge after many annual increases) is written `storable`: rounded, and held below 10^13,
which both databases store and read back, so an absurd figure reads as the largest amount rather
than failing its write, or every later read and scan.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

MINOR_UNITS: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2, "AZN": 2,
    "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2, "BOB": 2,
    "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2,
    "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0, "CNY": 2, "COP": 2, "COU": 2, "CRC": 2,
    "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2,
    "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2,
    "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2,
    "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2,
    "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2,
    "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2,
    "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2, "MXV": 2, "MYR": 2,
    "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2,
    "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2,
    "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2,
    "SLE": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2,
    "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2,
    "UGX": 0, "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2, "VES": 2,
    "VND": 0, "VUV": 0, "WST": 2, "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0, "XPF": 0, "YER": 2,
    "ZAR": 2, "ZMW": 2, "ZWG": 2,
}  # fmt: skip


def is_currency(code: str) -> bool:
    return code in MINOR_UNITS


def minor_unit(code: str) -> int:
    return MINOR_UNITS[code]


def quantize(amount: Decimal, code: str) -> Decimal:
    """Round half-up to the currency's minor unit."""
    return Decimal(amount).quantize(Decimal(1).scaleb(-MINOR_UNITS[code]), rounding=ROUND_HALF_UP)


def finer_than_currency(amount, code: str) -> str | None:
    """Why a stated amount of money (a contract's value, a posted penalty) is not one of this
    currency: more decimal places than its minor unit, worded as for hours; None if it is. Refused
    rather than rounded (it was, even to zero). Rates and unit prices may be finer: not checked here."""
    places = MINOR_UNITS[code]
    if Decimal(amount) != quantize(amount, code):
        return f"Ensure that there are no more than {places} decimal places for {code}."
    return None


def round_down(amount, code: str) -> Decimal:
    """Round down to the currency's minor unit: a cap (a penalty's), never to be exceeded."""
    return Decimal(str(amount)).quantize(Decimal(1).scaleb(-MINOR_UNITS[code]), rounding=ROUND_FLOOR)


MONEY_LIMIT = Decimal(10**12)
MONEY_BOUNDS = {"min_value": 0, "max_value": MONEY_LIMIT}  # a stated amount, for a serializer field
MONEY_HELP = "In the currency's minor unit at most (EUR 2 decimal places, JPY 0, KWD 3): a finer amount is a 422."
_STORED_LIMIT = Decimal(10**13)  # exclusive: 15 significant digits with cents (SQLite's precision)


def storable(amount: Decimal, code: str | None = None) -> Decimal:
    """`quantize` (to the currency's minor unit; without one, to the column's four places, as for
    a unit price), held within ±(10^13 − that unit)."""
    unit = Decimal(1).scaleb(-(4 if code is None else MINOR_UNITS[code]))
    largest = _STORED_LIMIT - unit
    amount = Decimal(amount)
    if abs(amount) >= largest:  # compared before rounding: a huge amount would not quantize
        return largest.copy_sign(amount)
    return amount.quantize(unit, rounding=ROUND_HALF_UP)
