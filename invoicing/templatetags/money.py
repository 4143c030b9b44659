"""Amounts and quantities as bills and receipts print them: "12,345.67", rounded half-up, never
through a float (a float has already lost the cents a bill must add up to).

Values come as `Decimal`, `int`, or the exact decimal strings of an invoice's trace.
"""

from decimal import ROUND_HALF_UP, Decimal

from django import template

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
