"""Amounts and quantities as bills and receipts print them: "12,345.67", rounded half-up, never
through a float (a float has already lost the cents a bill must add up to).

Values come as `Decimal`, `int`, or the exact decimal strings of an invoice's trace. An amount with
its currency is written as the active language writes it, from Babel's CLDR data (`money_in`).
"""

from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import format_currency, get_currency_symbol
from django import template
from django.utils import translation

register = template.Library()

CENT = Decimal("0.01")


def _decimal(value: Decimal | int | str | None) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        raise TypeError("Amounts are printed from Decimal or exact strings, never from a float.")
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _grouped(number: Decimal, places: int) -> str:
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # no "-0.00"
    return f"{rounded:,}"


@register.filter
def money(value: Decimal | int | str | None) -> str:
    """12345.6 -> "12,345.60"."""
    number = _decimal(value)
    return "" if number is None else _grouped(number, 2)


# Amounts are written as in Pakistan, whatever the language; the provider's currency says which money.
_LOCALES = {"en": "en_PK", "ur": "ur_PK"}


def _locale() -> str:
    return _LOCALES.get(translation.get_language() or "en", "en_PK")


@register.filter
def money_in(value: Decimal | int | str | None, currency: str) -> str:
    """An amount in `currency` as the active language writes it: "Rs9,750.00" in English, and with the
    currency's Urdu name in Urdu ("9,750.00 پاکستانی روپیہ"): CLDR's Urdu symbol is the Latin "Rs"."""
    number = _decimal(value)
    if number is None:
        return ""
    rounded = number.quantize(CENT, rounding=ROUND_HALF_UP)  # Babel would round half-even
    if rounded == 0:
        rounded = abs(rounded)
    locale = _locale()
    if locale.startswith("ur"):
        return format_currency(rounded, currency, "#,##0.00", locale=locale, format_type="name")
    # Every amount here is kept in cents, whatever CLDR says the currency's digits are.
    return format_currency(rounded, currency, locale=locale, currency_digits=False)


@register.filter
def currency_symbol(currency: str) -> str:
    """The symbol a table's heading names its amounts in: "Rs" for PKR."""
    return get_currency_symbol(currency, locale=_locale())


@register.filter
def number(value: Decimal | int | str | None, places: int = 2) -> str:
    """A quantity to `places` decimals with thousands separators: 0.37096|number:4 -> "0.3710"."""
    found = _decimal(value)
    return "" if found is None else _grouped(found, int(places))


@register.filter
def kwh(value: Decimal | int | str | None) -> str:
    """Units as meters show them: whole kWh without decimals, anything else to 2 places."""
    found = _decimal(value)
    if found is None:
        return ""
    return _grouped(found, 0 if found == found.to_integral_value() else 2)


@register.filter
def exact(value: Decimal | int | str | None) -> str:
    """A rate or band as it was set, without trailing zeros: "0.0900" -> "0.09", "41.0000" -> "41"."""
    found = _decimal(value)
    return "" if found is None else f"{found.normalize():f}"


@register.filter
def rate(value: Decimal | int | str | None) -> str:
    """A price per kWh: at least 2 decimals, more only when the price has them ("41.00", "14.3456")."""
    found = _decimal(value)
    if found is None:
        return ""
    places = max(2, -found.normalize().as_tuple().exponent)
    return _grouped(found, places)
