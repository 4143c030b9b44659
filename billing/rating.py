"""The rating engine: one connection, one billing period, the tariff rulebook of DESIGN.md.

Plain values in, a rated bill out; no database, no floats. Every component is rounded to 0.01,
half-up, where it is computed, and totals are sums of rounded parts, so a bill adds up on paper.

1. Period: billing days = exact time between the period's two readings; units per register =
   difference; net units per bucket = import - export, never below 0.
2. Rows: the connection type's own rows of each kind, or the all-types rows where it has none.
   Peak/off-peak rows rate each bucket on its own; otherwise one `all` bucket on total net units.
3. Energy per bucket: average = units / (days x 24) picks the slab whose band holds it; one rate
   for all units. Minimum units and amount scale by days / 30; charge = min amount +
   (units - min units) x rate, never below the min amount. (Graduated slabs: each block of
   monthly kWh at its own rate.)
4. Taxes: rate x total energy, one rounding per rule. 5. Fixed charges: as they are.
6. Subsidies whose band holds total import / (days x 24), or whose income ceiling is at or above
   the declared income: rate x total import units, or a percent of energy; never above energy.
7. Current charges = energy + taxes + fixed - subsidies. Payable before the due date adds the
   arrears; after it, a late surcharge (a percent of current charges) is added once.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0")
NO_MONEY = Decimal("0.00")
HOURS_PER_DAY = Decimal(24)
DAYS_PER_MINIMUM = Decimal(30)
SECONDS_PER_DAY = Decimal(86400)
PEAK, OFF_PEAK, ALL = "peak", "off_peak", "all"
AVERAGE, GRADUATED = "average", "graduated"


def money(amount: Decimal) -> Decimal:
    """Round to cents, half-up: the rule printed on our bills."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


class RatingError(ValueError):
    """The inputs cannot make a bill (no rate for a bucket, readings out of order, ...)."""


@dataclass(frozen=True, slots=True)
class Reading:
    at: datetime
    import_peak: Decimal
    import_off_peak: Decimal
    export_peak: Decimal = ZERO
    export_off_peak: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Tariff:
    rate: Decimal
    bucket: str = ALL
    band_low: Decimal = ZERO
    band_high: Decimal | None = None  # None: open
    min_units: Decimal = ZERO  # per 30 days
    min_amount: Decimal = ZERO  # per 30 days
    slab: int = 1
    mode: str = AVERAGE
    code: str = ""
    connection_type: Any = None  # None: every type without rows of its own
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Tax:
    name: str
    rate: Decimal  # a fraction: 0.17 is 17%
    authority: str = ""
    connection_type: Any = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class FixedFee:
    name: str
    amount: Decimal
    authority: str = ""
    connection_type: Any = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class SubsidyRule:
    code: str
    rate_per_unit: Decimal | None = None
    percent: Decimal | None = None
    band_low: Decimal | None = None  # usage-based when set
    band_high: Decimal | None = None
    income_ceiling: Decimal | None = None  # income-based when set
    payer: str = ""
    connection_type: Any = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """The rows in force on the issue date, of every connection type; `for_type` narrows them."""

    tariffs: Sequence[Tariff] = ()
    taxes: Sequence[Tax] = ()
    fixed: Sequence[FixedFee] = ()
    subsidies: Sequence[SubsidyRule] = ()

    def for_type(self, connection_type: Any) -> "Schedule":
        return Schedule(
            tariffs=_own_or_general(self.tariffs, connection_type),
            taxes=_own_or_general(self.taxes, connection_type),
            fixed=_own_or_general(self.fixed, connection_type),
            subsidies=_own_or_general(self.subsidies, connection_type),
        )


def _own_or_general(rows: Sequence[Any], connection_type: Any) -> tuple:
    own = tuple(row for row in rows if row.connection_type == connection_type and connection_type is not None)
    return own or tuple(row for row in rows if row.connection_type is None)


@dataclass(frozen=True, slots=True)
class Line:
    kind: str  # energy, tax, fixed, subsidy (subsidy amounts are positive and subtracted)
    label: str
    amount: Decimal
    code: str = ""
    row_id: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """What is billed: days and net units per bucket, and total import (for subsidies)."""

    days: Decimal
    units: dict[str, Decimal]  # bucket -> net kWh
    total_import: Decimal


@dataclass(frozen=True, slots=True)
class RatedBill:
    lines: tuple[Line, ...]
    energy: Decimal
    taxes: Decimal
    fixed: Decimal
    subsidies: Decimal
    current_charges: Decimal
    arrears: Decimal
    payable_before_due: Decimal
    late_surcharge: Decimal
    payable_after_due: Decimal
    trace: dict = field(default_factory=dict)

    def lines_of(self, kind: str) -> list[Line]:
        return [line for line in self.lines if line.kind == kind]


def usage_between(start: Reading, end: Reading) -> Usage:
    """Step 1: the usage between two cumulative readings."""
    if end.at <= start.at:
        raise RatingError(f"The closing reading ({end.at}) must come after the opening one ({start.at}).")
    days = Decimal((end.at - start.at).total_seconds()) / SECONDS_PER_DAY
    peak_in = end.import_peak - start.import_peak
    off_in = end.import_off_peak - start.import_off_peak
    peak_out = end.export_peak - start.export_peak
    off_out = end.export_off_peak - start.export_off_peak
    if min(peak_in, off_in, peak_out, off_out) < 0:
        raise RatingError(
            "A register went down between the two readings; record the meter replacement first."
        )
    units = {PEAK: max(peak_in - peak_out, ZERO), OFF_PEAK: max(off_in - off_out, ZERO)}
    return Usage(days=days, units=units, total_import=peak_in + off_in)


def _in_band(value: Decimal, low: Decimal, high: Decimal | None) -> bool:
    return low <= value and (high is None or value < high)


def _band_text(low: Decimal, high: Decimal | None) -> str:
    return f"[{low.normalize():f}, {'open' if high is None else f'{high.normalize():f}'})"


def _energy(bucket: str, units: Decimal, days: Decimal, tariffs: list[Tariff]) -> tuple[Line, dict]:
    scale = days / DAYS_PER_MINIMUM
    if tariffs[0].mode == GRADUATED:
        charge = ZERO
        blocks = []
        for row in sorted(tariffs, key=lambda r: r.band_low):
            in_block = max(
                min(units, row.band_high if row.band_high is not None else units) - row.band_low, ZERO
            )
            charge += in_block * row.rate
            blocks.append({"slab": row.slab, "units": in_block, "rate": row.rate})
        first = min(tariffs, key=lambda r: r.band_low)
        minimum = first.min_amount * scale
        amount = money(max(charge, minimum))
        trace = {
            "bucket": bucket,
            "units": units,
            "mode": GRADUATED,
            "blocks": blocks,
            "minAmount": money(minimum),
        }
        return Line("energy", f"Energy ({bucket})", amount, first.code, first.id), trace
    average = units / (days * HOURS_PER_DAY)
    row = next((r for r in tariffs if _in_band(average, r.band_low, r.band_high)), None)
    if row is None:
        raise RatingError(f"No {bucket} slab holds an average of {average} kWh per hour.")
    min_units = row.min_units * scale
    min_amount = row.min_amount * scale
    amount = money(max(min_amount + (units - min_units) * row.rate, min_amount))
    trace = {
        "bucket": bucket,
        "units": units,
        "averagePerHour": average,
        "slab": row.slab,
        "band": _band_text(row.band_low, row.band_high),
        "why": f"average {average.quantize(Decimal('0.0001'))} kWh/h lies in {_band_text(row.band_low, row.band_high)}",
        "rate": row.rate,
        "minUnits": min_units,
        "minAmount": money(min_amount),
        "minimumApplied": units < min_units,
    }
    return Line("energy", f"Energy ({bucket}, slab {row.slab})", amount, row.code, row.id), trace


def rate_usage(
    usage: Usage,
    schedule: Schedule,
    *,
    income: Decimal | None = None,
    arrears: Decimal = NO_MONEY,
    late_surcharge_percent: Decimal = ZERO,
) -> RatedBill:
    """Steps 2 to 9 for usage already measured; `schedule` is the connection type's rows in force."""
    if usage.days <= 0:
        raise RatingError("A billing period must last more than zero days.")
    by_bucket: dict[str, list[Tariff]] = {}
    for row in schedule.tariffs:
        by_bucket.setdefault(row.bucket, []).append(row)
    if PEAK in by_bucket or OFF_PEAK in by_bucket:
        buckets = [(PEAK, usage.units.get(PEAK, ZERO)), (OFF_PEAK, usage.units.get(OFF_PEAK, ZERO))]
    else:
        buckets = [(ALL, sum(usage.units.values(), ZERO))]
    lines: list[Line] = []
    energy_trace = []
    for bucket, units in buckets:
        if bucket not in by_bucket:
            raise RatingError(f"No {bucket} tariff is in force for this connection type.")
        line, trace = _energy(bucket, units, usage.days, by_bucket[bucket])
        lines.append(line)
        energy_trace.append(trace)
    energy = sum((line.amount for line in lines), NO_MONEY)

    # Lines in a fixed order (the schedule's own, by id), so a bill never depends on the order rows
    # were given in.
    taxes_in_force = sorted(schedule.taxes, key=_row_order)
    tax_lines = [Line("tax", tax.name, money(tax.rate * energy), tax.name, tax.id) for tax in taxes_in_force]
    fees = sorted(schedule.fixed, key=_row_order)
    fixed_lines = [Line("fixed", fee.name, money(fee.amount), fee.name, fee.id) for fee in fees]
    import_average = usage.total_import / (usage.days * HOURS_PER_DAY)
    subsidy_lines, subsidy_trace = [], []
    for rule in sorted(schedule.subsidies, key=_row_order):
        if rule.income_ceiling is not None:
            applies = income is not None and income <= rule.income_ceiling
            test = f"declared income {income} vs ceiling {rule.income_ceiling}"
        else:
            applies = _in_band(import_average, rule.band_low or ZERO, rule.band_high)
            test = f"import {import_average.quantize(Decimal('0.0001'))} kWh/h in {_band_text(rule.band_low or ZERO, rule.band_high)}"
        subsidy_trace.append({"code": rule.code, "applies": applies, "test": test})
        if applies:
            raw = (
                rule.rate_per_unit * usage.total_import
                if rule.rate_per_unit is not None
                else energy * rule.percent / 100
            )
            subsidy_lines.append(Line("subsidy", rule.code, money(raw), rule.code, rule.id))
    subsidies = sum((line.amount for line in subsidy_lines), NO_MONEY)
    if subsidies > energy:  # never more than energy: trim the last lines
        subsidy_lines, subsidies = _cap(subsidy_lines, energy), energy

    taxes = sum((line.amount for line in tax_lines), NO_MONEY)
    fixed = sum((line.amount for line in fixed_lines), NO_MONEY)
    current = energy + taxes + fixed - subsidies
    late = money(current * late_surcharge_percent / 100)
    return RatedBill(
        lines=(*lines, *tax_lines, *fixed_lines, *subsidy_lines),
        energy=energy,
        taxes=taxes,
        fixed=fixed,
        subsidies=subsidies,
        current_charges=current,
        arrears=arrears,
        payable_before_due=current + arrears,
        late_surcharge=late,
        payable_after_due=current + arrears + late,
        trace={
            "billingDays": usage.days,
            "units": dict(usage.units),
            "totalImport": usage.total_import,
            "energy": energy_trace,
            "taxBase": energy,
            "subsidyTests": subsidy_trace,
        },
    )


def _row_order(row: Tax | FixedFee | SubsidyRule) -> tuple:
    return (row.id or 0, getattr(row, "name", "") or getattr(row, "code", ""))


def _cap(lines: list[Line], limit: Decimal) -> list[Line]:
    capped, left = [], limit
    for line in lines:
        amount = min(line.amount, left)
        left -= amount
        capped.append(Line(line.kind, line.label, amount, line.code, line.row_id))
    return capped


def rate_period(
    start: Reading,
    end: Reading,
    schedule: Schedule,
    *,
    income: Decimal | None = None,
    arrears: Decimal = NO_MONEY,
    late_surcharge_percent: Decimal = ZERO,
) -> RatedBill:
    """A bill for the usage between two readings."""
    return rate_usage(
        usage_between(start, end),
        schedule,
        income=income,
        arrears=arrears,
        late_surcharge_percent=late_surcharge_percent,
    )


def period_readings(readings: Iterable[Reading], year: int, month: int) -> tuple[Reading, Reading] | None:
    """The last reading of the month before and the last of the month: the billing period's ends."""
    previous = (year, month - 1) if month > 1 else (year - 1, 12)
    last: dict[tuple[int, int], Reading] = {}
    for reading in readings:
        key = (reading.at.year, reading.at.month)
        if key in ((year, month), previous) and (key not in last or reading.at > last[key].at):
            last[key] = reading
    if previous in last and (year, month) in last:
        return last[previous], last[(year, month)]
    return None
