"""Where a bill's period starts and ends, the estimate of a month without a reading, and the parts of
a period on each connection type. Pure: plain values in, no ORM and no clock.

Continuity: a bill's period starts where the connection's previous (non-cancelled) bill ended, at the
registers that bill closed at, so consecutive bills cover every moment exactly once, whatever came
between them (a final bill to a mid-month reading, a month left unbilled). With no earlier bill to
continue from (none, or one of typed kWh, which has no ends) it starts at the last reading of the
month before, or, for a connection connected within the month (no reading in the month before), at
its first reading. It ends at the month's last reading (or at the last reading up to a moment the
caller names: a final bill to a mid-month reading).
"""

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import NamedTuple

from billing.rating import SHOWN, MeterChange, Reading, days_between, register_units, round_half_up


def month_before(year: int, month: int) -> tuple[int, int]:
    return (year, month - 1) if month > 1 else (year - 1, 12)


def period_ends(
    readings: Sequence[Reading],
    year: int,
    month: int,
    *,
    previous: Reading | None = None,
    until: datetime | None = None,
) -> tuple[Reading | None, Reading | None]:
    """The period's opening and closing readings, either None when there is none.

    `readings`: the connection's readings of the month and the month before, in local time, any order.
    `previous`: where the previous bill ended (its moment and closing registers), if it has ends.
    `until`: only readings up to this moment count (a final bill).
    """
    before = month_before(year, month)
    last_before = first_in = last_in = None
    for reading in readings:
        at = reading.at
        if until is not None and at > until:
            continue
        key = (at.year, at.month)
        if key == (year, month):
            if first_in is None or at < first_in.at:
                first_in = reading
            if last_in is None or at > last_in.at:
                last_in = reading
        elif key == before and (last_before is None or at > last_before.at):
            last_before = reading
    start = previous or last_before or first_in
    if start is None or last_in is None or last_in.at <= start.at:
        return start, None
    return start, last_in


# --- estimates -------------------------------------------------------------------------------------

KWH_STEP = Decimal("0.0001")
REGISTER_NAMES = ("importPeak", "importOffPeak", "exportPeak", "exportOffPeak")
LAST_THREE, YEAR_BEFORE, THOSE_THERE_ARE = (
    "the last three actual periods",
    "the same month a year before",
    "the actual periods there are",
)


class ActualPeriod(NamedTuple):
    """A stretch between two actual readings that close a period, and each register's units in it."""

    start: Reading
    end: Reading
    days: Fraction
    units: tuple[
        Decimal, Decimal, Decimal, Decimal
    ]  # import peak, import off-peak, export peak, export off-peak


def actual_periods(readings: Sequence[Reading], changes: Sequence[MeterChange] = ()) -> list[ActualPeriod]:
    """The connection's actual periods, oldest first: from its first reading to the last reading of
    its month, and from each month's last reading to the next month's that has one, as bills are
    read; across meter exchanges, each meter's part (`changes`, in time order)."""
    ordered = sorted(readings, key=lambda reading: reading.at)
    if not ordered:
        return []
    closing: dict[tuple[int, int], Reading] = {}
    for reading in ordered:  # in time order: each month keeps its last
        closing[(reading.at.year, reading.at.month)] = reading
    bounds = [ordered[0], *(reading for reading in closing.values() if reading is not ordered[0])]
    periods = []
    for start, end in pairwise(bounds):
        within = [change for change in changes if start.at < change.at <= end.at]
        units, _ = register_units(start, end, within)
        periods.append(ActualPeriod(start, end, days_between(start.at, end.at), units))
    return periods


class Estimate(NamedTuple):
    """An estimated closing reading and how it was reached, for the bill and its trace."""

    end: Reading
    days: Fraction
    basis: str
    periods: tuple[ActualPeriod, ...]
    daily: tuple[Fraction, Fraction, Fraction, Fraction]  # kWh a day, per register
    units: tuple[Decimal, Decimal, Decimal, Decimal]

    def trace(self, start: Reading) -> dict:
        return {
            "from": start.at.isoformat(),
            "to": self.end.at.isoformat(),
            "days": SHOWN.divide(*map(Decimal, self.days.as_integer_ratio())),
            "basis": self.basis,
            "periods": [
                {
                    "from": period.start.at.isoformat(),
                    "to": period.end.at.isoformat(),
                    "days": SHOWN.divide(*map(Decimal, period.days.as_integer_ratio())),
                    "units": dict(zip(REGISTER_NAMES, period.units, strict=True)),
                }
                for period in self.periods
            ],
            "dailyAverage": {
                name: SHOWN.divide(*map(Decimal, daily.as_integer_ratio()))
                for name, daily in zip(REGISTER_NAMES, self.daily, strict=True)
            },
            "units": dict(zip(REGISTER_NAMES, self.units, strict=True)),
            "opening": dict(zip(REGISTER_NAMES, start.registers(), strict=True)),
            "closing": dict(zip(REGISTER_NAMES, self.end.registers(), strict=True)),
        }


def estimate_reading(
    start: Reading, end_at: datetime, periods: Sequence[ActualPeriod], year: int, month: int
) -> Estimate | None:
    """The registers at `end_at` (00:00 on the 1st of the month after), estimated from `start` (DESIGN.md
    "Estimated reads"): per register, the daily average of the last three actual periods (their units
    over their days), or with fewer than three the same month a year before, else of the actual
    periods there are, times the estimated days, rounded to 0.0001 kWh. None without any actual period.

    `periods`: the connection's actual periods (`actual_periods`); those ending after `start` are not
    history yet."""
    known = [period for period in periods if period.end.at <= start.at]
    if len(known) >= 3:
        chosen, basis = known[-3:], LAST_THREE
    else:
        year_before = [
            period for period in known if (period.end.at.year, period.end.at.month) == (year - 1, month)
        ]
        chosen, basis = (year_before[-1:], YEAR_BEFORE) if year_before else (known, THOSE_THERE_ARE)
    if not chosen:
        return None
    total_days = sum((period.days for period in chosen), Fraction(0))
    daily = tuple(
        sum((Fraction(period.units[index]) for period in chosen), Fraction(0)) / total_days
        for index in range(4)
    )
    days = days_between(start.at, end_at)
    units = tuple(round_half_up(per_day * days, KWH_STEP) for per_day in daily)
    end = Reading(end_at, *(opening + more for opening, more in zip(start.registers(), units, strict=True)))
    return Estimate(end, days, basis, tuple(chosen), daily, units)


# --- a change of connection type -----------------------------------------------------------------

_MOMENT = timedelta(microseconds=1)


class TypeChange(NamedTuple):
    effective_from: date  # the first day on the new type
    from_type: int
    to_type: int
    from_code: str = ""
    to_code: str = ""


class TypePart(NamedTuple):
    first: date  # its first and last calendar day
    last: date
    type_id: int
    code: str

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def calendar_day(moment: datetime) -> date:
    """The calendar day a period ending at `moment` ends on: a period to 00:00 ends the day before."""
    return (moment - _MOMENT).date()


def type_on(day: date, changes: Sequence[TypeChange]) -> tuple[int, str]:
    """The connection's type on `day`, from its changes of type (in date order, at least one)."""
    before = [change for change in changes if change.effective_from <= day]
    if before:
        return before[-1].to_type, before[-1].to_code
    return changes[0].from_type, changes[0].from_code


def period_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The first and last calendar day of the period (`start`, `end`]: the days after the opening
    reading's day up to and including the closing reading's (DESIGN.md "Proration"; a moment at 00:00
    belongs to the day before). Moments are in local time. A period within one day: that day."""
    first, last = calendar_day(start) + timedelta(days=1), calendar_day(end)
    return (last if last < first else first), last


def type_parts(start: datetime, end: datetime, changes: Sequence[TypeChange]) -> list[TypePart]:
    """The parts of the period (`start`, `end`] on each type, split at 00:00 of each change's day
    (its days: `period_days`). A change on the period's first day or before it only decides its type."""
    first, last = period_days(start, end)
    cuts = sorted({change.effective_from for change in changes if first < change.effective_from <= last})
    parts: list[TypePart] = []
    for begin, after in pairwise([first, *cuts, last + timedelta(days=1)]):
        type_id, code = type_on(begin, changes)
        if parts and parts[-1].type_id == type_id:  # changed and changed back: one part
            parts[-1] = parts[-1]._replace(last=after - timedelta(days=1))
        else:
            parts.append(TypePart(begin, after - timedelta(days=1), type_id, code))
    return parts
