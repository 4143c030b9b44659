"""Calendar months, as the product bills them: a month is the date of its first day.

Pure date arithmetic, no ORM and no clock: the caller passes today where a rule needs it.
"""

import calendar
import re
from datetime import date

_YEAR_MONTH = re.compile(r"(\d{4})-(\d{2})")
FIRST_YEAR, LAST_YEAR = 2000, 2100  # the months a bill, a filter or a run may name


def first_of(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """The first of the month `months` after (or before, if negative) the month of `day`."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def previous_month(day: date) -> date:
    return add_months(day, -1)


def next_month(day: date) -> date:
    return add_months(day, 1)


def days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def month_end(year: int, month: int) -> date:
    return date(year, month, days_in_month(year, month))


def parse_month(value: str) -> date:
    """`YYYY-MM` as the first of that month; ValueError for anything else."""
    match = _YEAR_MONTH.fullmatch(value or "")
    if not match or not 1 <= int(match[2]) <= 12 or not FIRST_YEAR <= int(match[1]) <= LAST_YEAR:
        raise ValueError(f"Give the month as YYYY-MM, e.g. 2024-07 (got {value!r}).")
    return date(int(match[1]), int(match[2]), 1)
