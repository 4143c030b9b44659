"""The rating engine: one connection, one billing period, the tariff rulebook of DESIGN.md.

Plain values in, a rated bill out; no database, no floats. Every component is rounded to 0.01,
half-up, where it is computed, and totals are sums of rounded parts, so a bill adds up on paper.

1. Period: billing days = exact time between the period's two readings; units per register =
   difference; net units per bucket = import - export, never below 0.
2. Rows: those in force on the period's days, the connection type's own rows of each kind, or the
   all-types rows where it has none. A row starting or ending inside the period splits it, each part
   rated on its own rows (`ScheduleHistory`, `rate_prorated`: DESIGN.md "Proration").
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

Exact values: the rulebook rounds the exact value half-up, so nothing is divided before it is rounded.
Billing days are exact (`usage_between` gives a `Fraction`: whole microseconds over a day's), taken
as p / q. A figure over the days is kept as an exact numerator over a whole denominator (a scaled
minimum is min x p over 30 q), a band test is multiplied out (low x 24 p <= units x q), and a charge
is rounded from its numerator and denominator at once: a half-cent tie rounds up. Products and sums
are taken in `EXACT`, wide enough that they never round; the trace shows the quotients to 28 digits,
for people. Fractions would do the same, several times slower: they stay in the tests' oracle.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from fractions import Fraction
from typing import Any, NamedTuple

# Only the refusals are translated (a refusal is read by a person); the rating itself needs no Django.
from django.utils.translation import gettext as _

CENT = Decimal("0.01")
ZERO = Decimal("0")
NO_MONEY = Decimal("0.00")
KWH = Decimal("0.0001")  # units shared between the parts of a period are rounded to this
IMPORT = "import"  # beside the buckets, the figure shared for subsidies
HOURS_PER_DAY = 24
DAYS_PER_MINIMUM = 30
MICROSECONDS_PER_DAY = 86_400_000_000
_MICROSECOND = timedelta(microseconds=1)
PEAK, OFF_PEAK, ALL = "peak", "off_peak", "all"
BUCKET_LABELS = {PEAK: "peak", OFF_PEAK: "off-peak", ALL: "all hours"}  # as printed on bill lines
AVERAGE, GRADUATED = "average", "graduated"


def money(amount: Decimal) -> Decimal:
    """Round to cents, half-up: the rule printed on our bills."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def round_half_up(value: Decimal | Fraction, step: Decimal) -> Decimal:
    """`value` to a multiple of `step` (a power of ten), half-up. A `Fraction` is rounded as it is,
    never first divided out to 28 digits, where 0.004999... could pass for a tie or a tie for less."""
    if type(value) is Decimal:
        return value.quantize(step, rounding=ROUND_HALF_UP)
    steps = value / Fraction(step)
    whole = (2 * abs(steps.numerator) + steps.denominator) // (2 * steps.denominator)
    return Decimal(whole if steps >= 0 else -whole) * step


# Digits enough that +, - and x of a bill's figures never round: amounts, rates and kWh have at most
# 14 digits and the days' p and q at most 30 (microseconds, or a decimal's digits), so no product
# the engine takes has more than about 80.
EXACT = Context(prec=120)
SHOWN = Context(prec=28)  # quotients in the trace, for people


class Span(NamedTuple):
    """Billing days as p / q, exactly, and the two denominators the engine divides by, all as decimal
    integers made once per bill: a scaled minimum is min x p over `per_minimum` (30 q), an average
    per hour is units x q over `hours` (24 p)."""

    p: Decimal
    q: Decimal
    per_minimum: Decimal
    hours: Decimal

    @classmethod
    def of(cls, days: Decimal | Fraction) -> "Span":
        p, q = days.as_integer_ratio()
        return cls(Decimal(p), Decimal(q), Decimal(DAYS_PER_MINIMUM * q), Decimal(HOURS_PER_DAY * p))


def _money_over(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator (neither negative) to the cent, half-up, from the exact quotient:
    the whole cents of (200 x numerator + denominator) / (2 x denominator)."""
    return ((numerator * 200 + denominator) // (denominator * 2)).scaleb(-2)


def _shown(numerator: Decimal, denominator: Decimal) -> Decimal:
    return SHOWN.divide(numerator, denominator)


class RatingError(ValueError):
    """The inputs cannot make a bill (no rate for a bucket, readings out of order, ...)."""


@dataclass(frozen=True, slots=True)
class Reading:
    at: datetime
    import_peak: Decimal
    import_off_peak: Decimal
    export_peak: Decimal = ZERO
    export_off_peak: Decimal = ZERO
    replaced: bool = False  # flagged as a new meter's (a meter exchange's first reading, or a bare flag)

    def registers(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        return (self.import_peak, self.import_off_peak, self.export_peak, self.export_off_peak)


@dataclass(frozen=True, slots=True)
class MeterChange:
    """A meter exchanged: the old meter's final registers and the new meter's first, at one moment."""

    final: Reading
    first: Reading
    old_meter: str = ""
    new_meter: str = ""

    @property
    def at(self) -> datetime:
        return self.final.at


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
    valid_from: date | None = None  # in force on days in [valid_from, valid_to); None: unbounded
    valid_to: date | None = None


@dataclass(frozen=True, slots=True)
class Tax:
    name: str
    rate: Decimal  # a fraction: 0.17 is 17%
    authority: str = ""
    connection_type: Any = None
    id: int | None = None
    valid_from: date | None = None
    valid_to: date | None = None


@dataclass(frozen=True, slots=True)
class FixedFee:
    name: str
    amount: Decimal
    authority: str = ""
    connection_type: Any = None
    id: int | None = None
    valid_from: date | None = None
    valid_to: date | None = None


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
    valid_from: date | None = None
    valid_to: date | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """Rows in force together (on a day, or through a part of a period), of every connection type;
    `for_type` narrows them.

    Rows are put in their rating order once, when the schedule is made, not for every bill: tariffs
    by bucket and band, the other kinds by id, so a bill never depends on the order rows came in.
    """

    tariffs: Sequence[Tariff] = ()
    taxes: Sequence[Tax] = ()
    fixed: Sequence[FixedFee] = ()
    subsidies: Sequence[SubsidyRule] = ()
    by_bucket: dict[str, tuple[Tariff, ...]] = field(init=False, repr=False, compare=False)
    time_of_use: bool = field(init=False, repr=False, compare=False)
    fixed_lines: tuple["Line", ...] = field(init=False, repr=False, compare=False)  # the same on every bill
    fixed_total: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_bucket: dict[str, list[Tariff]] = {}
        for row in sorted(self.tariffs, key=lambda r: (r.bucket, r.band_low, r.id or 0)):
            by_bucket.setdefault(row.bucket, []).append(row)
        object.__setattr__(self, "by_bucket", {bucket: tuple(rows) for bucket, rows in by_bucket.items()})
        object.__setattr__(self, "taxes", tuple(sorted(self.taxes, key=_row_order)))
        object.__setattr__(self, "fixed", tuple(sorted(self.fixed, key=_row_order)))
        object.__setattr__(self, "subsidies", tuple(sorted(self.subsidies, key=_row_order)))
        object.__setattr__(self, "time_of_use", PEAK in by_bucket or OFF_PEAK in by_bucket)
        fixed_lines = tuple(
            Line("fixed", fee.name, money(fee.amount), fee.name, fee.id) for fee in self.fixed
        )
        object.__setattr__(self, "fixed_lines", fixed_lines)
        object.__setattr__(self, "fixed_total", sum((line.amount for line in fixed_lines), NO_MONEY))

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


_DAY = timedelta(days=1)


def _in_force_on(row: Tariff | Tax | FixedFee | SubsidyRule, day: date) -> bool:
    return (row.valid_from is None or row.valid_from <= day) and (row.valid_to is None or day < row.valid_to)


def days_label(first: date, last: date) -> str:
    """How a line names the days it is for, e.g. "1 Mar-14 Mar", or "31 Mar" for one day."""
    if first == last:
        return f"{first.day} {first:%b}"
    return f"{first.day} {first:%b}-{last.day} {last:%b}"


class Stretch(NamedTuple):
    """Calendar days of a period, `first` to `last` both included, on one set of rows in force."""

    first: date
    last: date
    schedule: Schedule  # the connection type's rows in force on each of these days

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


class ScheduleHistory:
    """A provider's dated rows (tariffs, taxes, fixed charges, subsidies) over some dates: the rows of a
    connection type in force on a day, and the stretches of a period on each set of rows.

    A period splits where a row of the type starts on a day inside it, or ends the day before one
    (DESIGN.md "Proration"); a row of another type, or a row replaced by the same values' row, splits
    nothing, because stretches on the same rows are one. Schedules and stretches are made once and
    shared: the bills of a month mostly cover the same days, so a billing run finds them made.
    """

    def __init__(
        self,
        tariffs: Iterable[Tariff] = (),
        taxes: Iterable[Tax] = (),
        fixed: Iterable[FixedFee] = (),
        subsidies: Iterable[SubsidyRule] = (),
    ) -> None:
        self._rows = (tuple(tariffs), tuple(taxes), tuple(fixed), tuple(subsidies))
        self._cuts = sorted(
            {day for rows in self._rows for row in rows for day in (row.valid_from, row.valid_to) if day}
        )
        self._schedules: dict[tuple, Schedule] = {}
        self._stretches: dict[tuple, tuple[Stretch, ...]] = {}

    def on(self, day: date, connection_type: Any) -> Schedule:
        """The type's rows in force on `day` (its own of each kind, or the all-types rows)."""
        in_force = tuple(
            _own_or_general([row for row in rows if _in_force_on(row, day)], connection_type)
            for rows in self._rows
        )
        key = tuple(tuple(map(id, rows)) for rows in in_force)  # the same rows: the same schedule
        schedule = self._schedules.get(key)
        if schedule is None:
            schedule = self._schedules[key] = Schedule(*in_force)
        return schedule

    def stretches(self, connection_type: Any, first: date, last: date) -> tuple[Stretch, ...]:
        """The days `first` to `last` split wherever the type's rows in force change."""
        key = (connection_type, first, last)
        found = self._stretches.get(key)
        if found is None:
            found = self._stretches[key] = self._split(connection_type, first, last)
        return found

    def _split(self, connection_type: Any, first: date, last: date) -> tuple[Stretch, ...]:
        starts = [first, *(day for day in self._cuts if first < day <= last)]
        stretches: list[Stretch] = []
        for begin, after in zip(starts, [*starts[1:], last + _DAY], strict=True):
            schedule = self.on(begin, connection_type)
            if stretches and stretches[-1].schedule is schedule:
                stretches[-1] = stretches[-1]._replace(last=after - _DAY)
            else:
                stretches.append(Stretch(begin, after - _DAY, schedule))
        return tuple(stretches)


class Line(NamedTuple):  # a tuple, not a frozen dataclass: bills are made by the hundred thousand
    # energy, tax, fixed, subsidy, estimate, credit, carried. Amounts are never negative: a subsidy,
    # an estimate's charges a true-up takes back and a credit brought are subtracted (`SUBTRACTED`),
    # a credit carried to the next bill is added (it lifts this bill to zero).
    kind: str
    label: str
    amount: Decimal
    code: str = ""
    row_id: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """What is billed: days and net units per bucket, and total import (for subsidies)."""

    days: Decimal | Fraction  # exact: usage_between gives a Fraction, a clerk's whole month a Decimal
    units: dict[str, Decimal]  # bucket -> net kWh
    total_import: Decimal
    meters: tuple[dict, ...] = ()  # across a meter exchange: each meter's part, for the trace


class RatedBill(NamedTuple):
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
    trace: dict
    # Set by `settle` only: what a true-up subtracts for its estimates, a credit brought from the
    # previous bill, and a credit carried on to the next one (current charges are never below zero).
    estimated_billed: Decimal = NO_MONEY
    credit_brought: Decimal = NO_MONEY
    credit_carried: Decimal = NO_MONEY

    def lines_of(self, kind: str) -> list[Line]:
        return [line for line in self.lines if line.kind == kind]


def as_json(value: Any) -> Any:
    """A trace as JSON values: decimals as exact strings (never floats), the rest as it is."""
    kind = type(value)  # exact types first: a trace is made of these, and isinstance costs more
    if kind is Decimal:
        return f"{value:f}"
    if kind is dict:
        return {key: as_json(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [as_json(item) for item in value]
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value


def usage_between(start: Reading, end: Reading, changes: Sequence[MeterChange] = ()) -> Usage:
    """Step 1: the usage between two cumulative readings, across any meter exchanges between them
    (`changes` in time order): per register, each meter's part (DESIGN.md "Meter exchange")."""
    if end.at <= start.at:
        raise RatingError(
            _("The closing reading (%(end)s) must come after the opening one (%(start)s).")
            % {"end": end.at, "start": start.at}
        )
    days = days_between(start.at, end.at)
    (peak_in, off_in, peak_out, off_out), meters = register_units(start, end, changes)
    units = {PEAK: max(peak_in - peak_out, ZERO), OFF_PEAK: max(off_in - off_out, ZERO)}
    return Usage(days=days, units=units, total_import=peak_in + off_in, meters=meters)


def days_between(start: datetime, end: datetime) -> Fraction:
    """The exact days from `start` to `end`: whole microseconds, never float seconds."""
    return Fraction((end - start) // _MICROSECOND, MICROSECONDS_PER_DAY)


def register_units(
    start: Reading, end: Reading, changes: Sequence[MeterChange] = ()
) -> tuple[tuple[Decimal, Decimal, Decimal, Decimal], tuple[dict, ...]]:
    """Each register's units (import peak, import off-peak, export peak, export off-peak) between two
    readings, across the meter exchanges between them, and each meter's part (none without one)."""
    if changes:
        return _across_meters(start, end, changes)
    units = (
        end.import_peak - start.import_peak,
        end.import_off_peak - start.import_off_peak,
        end.export_peak - start.export_peak,
        end.export_off_peak - start.export_off_peak,
    )
    if min(units) < 0:
        raise RatingError(
            _(
                "A register went down between the two readings; if the meter was exchanged, record the "
                "meter exchange (the old meter's final registers and the new meter's first)."
            )
        )
    return units, ()


REGISTER_NAMES = ("importPeak", "importOffPeak", "exportPeak", "exportOffPeak")  # as the trace names them


def _across_meters(
    start: Reading, end: Reading, changes: Sequence[MeterChange]
) -> tuple[tuple[Decimal, Decimal, Decimal, Decimal], tuple[dict, ...]]:
    """Each register's units summed over the meters' parts: opening to the first exchange's old final,
    each new first to the next old final, the last new first to the closing reading."""
    totals = [ZERO, ZERO, ZERO, ZERO]
    meters = []
    opening, meter = start, changes[0].old_meter
    for change in (*changes, None):
        closing = end if change is None else change.final
        part = [high - low for high, low in zip(closing.registers(), opening.registers(), strict=True)]
        if min(part) < 0:
            raise RatingError(
                _(
                    "A register of meter %(meter)s went down between %(opening)s and %(closing)s; check the "
                    "readings and the meter exchange."
                )
                % {
                    "meter": meter or _("(unnumbered)"),
                    "opening": f"{opening.at:%Y-%m-%d %H:%M}",
                    "closing": f"{closing.at:%Y-%m-%d %H:%M}",
                }
            )
        totals = [total + units for total, units in zip(totals, part, strict=True)]
        meters.append(
            {
                "meter": meter,
                "from": opening.at.isoformat(),
                "to": closing.at.isoformat(),
                "opening": dict(zip(REGISTER_NAMES, opening.registers(), strict=True)),
                "closing": dict(zip(REGISTER_NAMES, closing.registers(), strict=True)),
                "units": dict(zip(REGISTER_NAMES, part, strict=True)),
            }
        )
        if change is not None:
            opening, meter = change.first, change.new_meter
    return (totals[0], totals[1], totals[2], totals[3]), tuple(meters)


def _in_band(amount: Decimal, hours: Decimal, low: Decimal, high: Decimal | None) -> bool:
    """Whether amount / hours lies in [low, high), multiplied out: no division."""
    return low * hours <= amount and (high is None or amount < high * hours)


def _energy(bucket: str, units: Decimal, span: Span, tariffs: tuple[Tariff, ...]) -> tuple[Line, dict]:
    if tariffs[0].mode == GRADUATED:
        return _graduated(bucket, units, span, tariffs)
    spread = units * span.q  # the average per hour is spread / hours
    row = _slab_row(bucket, spread, span.hours, tariffs)
    return _average_charge(bucket, units, span, row, _shown(spread, span.hours))


def _slab_row(bucket: str, spread: Decimal, hours: Decimal, tariffs: tuple[Tariff, ...]) -> Tariff:
    """The row whose band holds the average spread / hours."""
    for row in tariffs:
        if _in_band(spread, hours, row.band_low, row.band_high):
            return row
    raise RatingError(
        _("No %(bucket)s slab holds an average of %(average)s kWh per hour.")
        % {"bucket": bucket, "average": _shown(spread, hours)}
    )


def _average_charge(
    bucket: str, units: Decimal, span: Span, row: Tariff, average: Decimal
) -> tuple[Line, dict]:
    """`units` at the rate of `row`, whose slab the `average` chose: minimum amount + (units - minimum
    units) x rate, the minimums scaled by the span's days / 30, never below the minimum amount."""
    p, per_minimum = span.p, span.per_minimum
    min_units = row.min_units * p
    min_amount = row.min_amount * p
    charge = min_amount + (units * per_minimum - min_units) * row.rate
    amount = _money_over(max(charge, min_amount), per_minimum)
    # Figures only: pages and PDFs put them into words ("why is this bill what it is").
    trace = {
        "bucket": bucket,
        "units": units,
        "averagePerHour": average,
        "slab": row.slab,
        "bandLow": row.band_low,
        "bandHigh": row.band_high,
        "rate": row.rate,
        "minUnits": _shown(min_units, per_minimum),
        "minAmount": _shown(min_amount, per_minimum),
        "minimumApplied": units * per_minimum < min_units,
    }
    return Line(
        "energy", f"Energy ({BUCKET_LABELS[bucket]}, slab {row.slab})", amount, row.code, row.id
    ), trace


def _graduated(
    bucket: str, units: Decimal, span: Span, tariffs: tuple[Tariff, ...], share: Fraction = Fraction(1)
) -> tuple[Line, dict]:
    """Each block of kWh at its own rate; a part of a split period has its rows' blocks scaled by its
    share (kept exact: every figure is taken times the share's denominator)."""
    part, whole = Decimal(share.numerator), Decimal(share.denominator)
    p, per_minimum = span.p, span.per_minimum
    first = tariffs[0]
    scaled_units = units * whole
    charge = ZERO
    blocks = []
    for row in tariffs:
        top = scaled_units if row.band_high is None else min(scaled_units, row.band_high * part)
        in_block = max(top - row.band_low * part, ZERO)
        charge += in_block * row.rate
        blocks.append(
            {"slab": row.slab, "units": in_block if whole == 1 else _shown(in_block, whole), "rate": row.rate}
        )
    minimum = first.min_amount * p
    amount = _money_over(max(charge * per_minimum, minimum * whole), per_minimum * whole)
    trace = {
        "bucket": bucket,
        "units": units,
        "mode": GRADUATED,
        "blocks": blocks,
        "minAmount": _money_over(minimum, per_minimum),
    }
    return Line("energy", f"Energy ({BUCKET_LABELS[bucket]})", amount, first.code, first.id), trace


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
        raise RatingError(_("A billing period must last more than zero days."))
    span = Span.of(usage.days)
    with localcontext(EXACT):
        by_bucket = schedule.by_bucket
        lines: list[Line] = []
        energy_trace = []
        energy = NO_MONEY
        for bucket, units in _buckets(schedule, usage.units):
            tariffs = by_bucket.get(bucket)
            if tariffs is None:
                raise RatingError(
                    _("No %(bucket)s tariff is in force for this connection type.") % {"bucket": bucket}
                )
            line, trace = _energy(bucket, units, span, tariffs)
            lines.append(line)
            energy_trace.append(trace)
            energy += line.amount

        tax_lines = [
            Line("tax", tax.name, money(tax.rate * energy), tax.name, tax.id) for tax in schedule.taxes
        ]
        imported = usage.total_import * span.q  # the import per hour is imported / hours
        subsidy_lines, subsidy_trace = [], []
        subsidies = NO_MONEY
        for rule in schedule.subsidies:
            applies, test = _subsidy_test(rule, income, imported, span.hours)
            subsidy_trace.append(test)
            if applies:
                raw = (
                    rule.rate_per_unit * usage.total_import
                    if rule.rate_per_unit is not None
                    else energy * rule.percent / 100
                )
                line = Line("subsidy", rule.code, money(raw), rule.code, rule.id)
                subsidy_lines.append(line)
                subsidies += line.amount
        if subsidies > energy:  # never more than energy: trim the last lines
            subsidy_lines, subsidies = _cap(subsidy_lines, energy), energy

        taxes = NO_MONEY
        for line in tax_lines:
            taxes += line.amount
        fixed = schedule.fixed_total
        current = energy + taxes + fixed - subsidies
        late = money(current * late_surcharge_percent / 100) if late_surcharge_percent else NO_MONEY
        return RatedBill(
            lines=(*lines, *tax_lines, *schedule.fixed_lines, *subsidy_lines),
            energy=energy,
            taxes=taxes,
            fixed=fixed,
            subsidies=subsidies,
            current_charges=current,
            arrears=arrears,
            payable_before_due=current + arrears,
            late_surcharge=late,
            payable_after_due=current + arrears + late,
            trace=_with_meters(
                {
                    "billingDays": _shown(span.p, span.q),
                    "units": dict(usage.units),
                    "totalImport": usage.total_import,
                    "energy": energy_trace,
                    "taxBase": energy,
                    "subsidyTests": subsidy_trace,
                },
                usage,
            ),
        )


def _subsidy_test(
    rule: SubsidyRule, income: Decimal | None, imported: Decimal, hours: Decimal
) -> tuple[bool, dict]:
    """Whether a subsidy applies: by the declared income, or by the import per hour (imported / hours)."""
    if rule.income_ceiling is not None:
        applies = income is not None and income <= rule.income_ceiling
        return applies, {
            "code": rule.code,
            "applies": applies,
            "income": income,
            "incomeCeiling": rule.income_ceiling,
        }
    applies = _in_band(imported, hours, rule.band_low or ZERO, rule.band_high)
    return applies, {
        "code": rule.code,
        "applies": applies,
        "importPerHour": _shown(imported, hours),
        "bandLow": rule.band_low,
        "bandHigh": rule.band_high,
    }


def _with_meters(trace: dict, usage: Usage) -> dict:
    if usage.meters:  # only across an exchange: every other bill's trace stays as small as it was
        trace["meters"] = list(usage.meters)
    return trace


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


# Line kinds subtracted from a bill's total; every other kind adds to it.
SUBTRACTED = frozenset({"subsidy", "estimate", "credit"})


class Estimated(NamedTuple):
    """An estimated bill the next actual reading trues up: its usage-dependent figures as issued."""

    number: str
    period: date
    energy: Decimal
    taxes: Decimal
    subsidies: Decimal
    units: dict[str, Decimal]  # net kWh per bucket (peak, off-peak), as the bill recorded them

    @property
    def charged(self) -> Decimal:
        """Energy + taxes - subsidies: never below the taxes, subsidies being capped at the energy."""
        return self.energy + self.taxes - self.subsidies


def settle(
    bill: RatedBill,
    *,
    estimates: Sequence[Estimated] = (),
    credit: Decimal = NO_MONEY,
    credit_from: str = "",
    late_surcharge_percent: Decimal = ZERO,
) -> RatedBill:
    """A true-up of estimated bills, and a credit brought from the previous bill, applied to `bill`.

    True-up (DESIGN.md "Estimated reads"): `bill` is rated on the whole span since the last actual
    reading, as one period, with this month's fixed charges; each estimated bill since is taken back,
    its energy + taxes - subsidies, as an `estimate` line. So the estimates' usage-dependent lines plus
    the true-up's come to those of the whole span, and every bill keeps its own month's fixed charges.

    A credit: when the result is below zero, the bill's own amount is zero (a line `carried` lifts it
    there) and the difference is carried to the next bill of the connection, which subtracts it as a
    `credit` line, carrying on whatever still exceeds its own amount. No bill is ever negative, so an
    issued amount, a balance and the ledger (billed + adjustments - payments = open balances) hold as
    they are; a credit waiting for the next bill is owed to no bill and sits in no balance. The late
    surcharge applies to a positive amount only (zero on a bill brought to zero).
    """
    if not estimates and not credit:
        return bill
    with localcontext(EXACT):
        lines = list(bill.lines)
        trace = dict(bill.trace)
        taken_back = NO_MONEY
        if estimates:
            for estimate in estimates:
                label = f"Billed on the estimate of {estimate.period:%B %Y} ({estimate.number})"
                lines.append(Line("estimate", label, estimate.charged, estimate.number))
                taken_back += estimate.charged
            trace["trueUp"] = {
                "estimates": [
                    {
                        "number": estimate.number,
                        "period": f"{estimate.period:%Y-%m}",
                        "energy": estimate.energy,
                        "taxes": estimate.taxes,
                        "subsidies": estimate.subsidies,
                        "charged": estimate.charged,
                        "units": dict(estimate.units),
                    }
                    for estimate in estimates
                ],
                "takenBack": taken_back,
                "usageCharges": bill.energy + bill.taxes - bill.subsidies,
            }
        due = bill.energy + bill.taxes + bill.fixed - bill.subsidies - taken_back
        if credit:
            lines.append(Line("credit", f"Credit carried from bill {credit_from}"[:120], credit, credit_from))
            trace["creditBrought"] = {"from": credit_from, "amount": credit}
            due -= credit
        carried = -due if due < 0 else NO_MONEY
        if carried:
            lines.append(Line("carried", "Credit carried to your next bill", carried))
            trace["creditCarried"] = carried
            due = NO_MONEY
        late = money(due * late_surcharge_percent / 100) if late_surcharge_percent and due > 0 else NO_MONEY
        return bill._replace(
            lines=tuple(lines),
            current_charges=due,
            payable_before_due=due + bill.arrears,
            late_surcharge=late,
            payable_after_due=due + bill.arrears + late,
            trace=trace,
            estimated_billed=taken_back,
            credit_brought=credit,
            credit_carried=carried,
        )


# --- a period split where its rows change (DESIGN.md "Proration") ---------------------------------


def rate_prorated(
    usage: Usage,
    stretches: Sequence[Stretch],
    *,
    income: Decimal | None = None,
    arrears: Decimal = NO_MONEY,
    late_surcharge_percent: Decimal = ZERO,
) -> RatedBill:
    """A period rated on the rows in force on its days (`ScheduleHistory.stretches`): on one set of
    rows, exactly as `rate_usage`; split where a row starts or ends inside it, by DESIGN.md "Proration".

    Each part's share is its calendar days over the period's. Each bucket's units, the import and the
    billing days are shared by it (to 0.0001 kWh, the last part taking what is left). The slab is
    chosen once per bucket, by the bucket's average over the whole period, in the bands of the last
    part's rows of that bucket; each part is charged at its own row of that slab number, its minimums
    scaled by its own days / 30 (graduated blocks: each part's own, scaled by its share). Each part's
    energy is its own line, each tax one line per part on that part's energy. A fixed charge or
    subsidy row in force in every part is charged once, as on an unsplit bill; one in force in only
    some parts is charged for those parts' share: a fixed charge times their days over the period's,
    a subsidy on their import or energy (whether it applies is tested on the whole period).
    """
    for stretch in stretches:
        if not stretch.schedule.tariffs:
            raise RatingError(
                _(
                    "No tariff is in force from %(first)s to %(last)s for this connection type; set the "
                    "prices for those days first."
                )
                % {"first": stretch.first, "last": stretch.last}
            )
    if len(stretches) == 1:
        return rate_usage(
            usage,
            stretches[0].schedule,
            income=income,
            arrears=arrears,
            late_surcharge_percent=late_surcharge_percent,
        )
    if usage.days <= 0:
        raise RatingError(_("A billing period must last more than zero days."))
    total = sum(stretch.days for stretch in stretches)
    shares = [Fraction(stretch.days, total) for stretch in stretches]
    # Each bucket a part may rate (peak, off-peak, or all hours: their sum) and the import, shared.
    figures = {PEAK: usage.units.get(PEAK, ZERO), OFF_PEAK: usage.units.get(OFF_PEAK, ZERO)}
    figures[ALL] = sum(usage.units.values(), ZERO)
    shared = _shared({**figures, IMPORT: usage.total_import}, shares)
    labels = [days_label(stretch.first, stretch.last) for stretch in stretches]
    whole = Span.of(usage.days)
    with localcontext(EXACT):
        slabs = _slabs_chosen(figures, stretches, whole)
        energy_lines: list[Line] = []
        tax_lines: list[Line] = []
        energy_trace, part_traces, part_energy = [], [], []
        for index, (stretch, share, own) in enumerate(zip(stretches, shares, shared, strict=True)):
            span = Span.of(Fraction(usage.days) * share)
            buckets = (PEAK, OFF_PEAK) if stretch.schedule.time_of_use else (ALL,)
            units = {bucket: own[bucket] for bucket in buckets}
            energy = NO_MONEY
            for bucket, bucket_units in units.items():
                line, step = _part_energy(bucket, bucket_units, span, stretch, slabs.get(bucket), share)
                energy_lines.append(line._replace(label=f"{line.label}, {labels[index]}"))
                energy_trace.append({**step, "part": index})
                energy += line.amount
            part_energy.append(energy)
            taxes = [
                Line("tax", f"{tax.name}, {labels[index]}"[:120], money(tax.rate * energy), tax.name, tax.id)
                for tax in stretch.schedule.taxes
            ]
            tax_lines += taxes
            part_traces.append(
                {
                    "from": stretch.first.isoformat(),
                    "to": stretch.last.isoformat(),
                    "calendarDays": stretch.days,
                    "share": f"{stretch.days}/{total}",
                    "billingDays": _shown(span.p, span.q),
                    "units": units,
                    "totalImport": own[IMPORT],
                    "energy": energy,
                    "taxes": sum((line.amount for line in taxes), NO_MONEY),
                    "taxLines": len(taxes),
                    "rows": _rows_trace(stretch.schedule),
                }
            )
        energy = sum(part_energy, NO_MONEY)
        taxes = sum((line.amount for line in tax_lines), NO_MONEY)

        fixed_lines, fixed_trace = [], []
        for fee, days, first, last in _rows_by_days(stretches, "fixed"):
            if days == total:
                line = Line("fixed", fee.name, money(fee.amount), fee.name, fee.id)
            else:
                amount = _money_over(fee.amount * days, Decimal(total))
                label = f"{fee.name}, {days_label(first, last)}"[:120]
                line = Line("fixed", label, amount, fee.name, fee.id)
            fixed_lines.append(line)
            fixed_trace.append(
                {"name": fee.name, "amount": fee.amount, "share": f"{days}/{total}", "charged": line.amount}
            )
        fixed = sum((line.amount for line in fixed_lines), NO_MONEY)

        imported = usage.total_import * whole.q  # the import per hour is imported / hours
        subsidy_lines, subsidy_trace = [], []
        subsidies = NO_MONEY
        for rule, days, first, last in _rows_by_days(stretches, "subsidies"):
            applies, test = _subsidy_test(rule, income, imported, whole.hours)
            if days == total:
                base_import, base_energy, label = usage.total_import, energy, rule.code
            else:
                within = [index for index, stretch in enumerate(stretches) if first <= stretch.first <= last]
                base_import = sum((shared[index][IMPORT] for index in within), ZERO)
                base_energy = sum((part_energy[index] for index in within), NO_MONEY)
                label = f"{rule.code}, {days_label(first, last)}"[:120]
                test.update(
                    {
                        "from": first.isoformat(),
                        "to": last.isoformat(),
                        "share": f"{days}/{total}",
                        "chargedImport": base_import,
                        "chargedEnergy": base_energy,
                    }
                )
            subsidy_trace.append(test)
            if applies:
                raw = (
                    rule.rate_per_unit * base_import
                    if rule.rate_per_unit is not None
                    else base_energy * rule.percent / 100
                )
                line = Line("subsidy", label, money(raw), rule.code, rule.id)
                subsidy_lines.append(line)
                subsidies += line.amount
        if subsidies > energy:  # never more than energy: trim the last lines
            subsidy_lines, subsidies = _cap(subsidy_lines, energy), energy

        current = energy + taxes + fixed - subsidies
        late = money(current * late_surcharge_percent / 100) if late_surcharge_percent else NO_MONEY
        return RatedBill(
            lines=(*energy_lines, *tax_lines, *fixed_lines, *subsidy_lines),
            energy=energy,
            taxes=taxes,
            fixed=fixed,
            subsidies=subsidies,
            current_charges=current,
            arrears=arrears,
            payable_before_due=current + arrears,
            late_surcharge=late,
            payable_after_due=current + arrears + late,
            trace=_with_meters(
                {
                    "billingDays": _shown(whole.p, whole.q),
                    "units": dict(usage.units),
                    "totalImport": usage.total_import,
                    "energy": energy_trace,
                    "taxBase": energy,
                    "subsidyTests": subsidy_trace,
                    "split": "prices",
                    "parts": part_traces,
                    "slabs": [
                        {"bucket": bucket, "averagePerHour": average, "slab": slab, "inPart": index}
                        for bucket, (slab, average, index) in slabs.items()
                    ],
                    "fixed": fixed_trace,
                },
                usage,
            ),
        )


def _shared(figures: dict[str, Decimal], shares: Sequence[Fraction]) -> list[dict[str, Decimal]]:
    """Each part's figures (kWh): the period's times the part's share, to 0.0001 kWh, the last part
    taking what is left, so the parts add up to the period."""
    left = dict(figures)
    parts = []
    for share in shares[:-1]:
        part = {name: round_half_up(Fraction(value) * share, KWH) for name, value in figures.items()}
        left = {name: left[name] - part[name] for name in left}
        parts.append(part)
    parts.append(left)
    return parts


def _buckets(schedule: Schedule, units: dict[str, Decimal]) -> tuple[tuple[str, Decimal], ...]:
    """Peak and off-peak rated apart where the rows price them apart; otherwise one `all` bucket."""
    if schedule.time_of_use:
        return ((PEAK, units.get(PEAK, ZERO)), (OFF_PEAK, units.get(OFF_PEAK, ZERO)))
    return ((ALL, sum(units.values(), ZERO)),)


def _slabs_chosen(
    figures: dict[str, Decimal], stretches: Sequence[Stretch], whole: Span
) -> dict[str, tuple[int, Decimal, int]]:
    """Per bucket rated by its average: the slab number whose band, in the last part's rows of that
    bucket, holds the bucket's average over the whole period; with that average and that part."""
    chosen: dict[str, tuple[int, Decimal, int]] = {}
    for index in reversed(range(len(stretches))):
        for bucket, tariffs in stretches[index].schedule.by_bucket.items():
            if bucket in chosen or tariffs[0].mode == GRADUATED:
                continue
            spread = figures[bucket] * whole.q
            row = _slab_row(bucket, spread, whole.hours, tariffs)
            chosen[bucket] = (row.slab, _shown(spread, whole.hours), index)
    return chosen


def _part_energy(
    bucket: str,
    units: Decimal,
    span: Span,
    stretch: Stretch,
    chosen: tuple[int, Decimal, int] | None,
    share: Fraction,
) -> tuple[Line, dict]:
    tariffs = stretch.schedule.by_bucket.get(bucket)
    if tariffs is None:
        raise RatingError(
            _("No %(bucket)s tariff is in force from %(first)s to %(last)s for this connection type.")
            % {"bucket": BUCKET_LABELS[bucket], "first": stretch.first, "last": stretch.last}
        )
    if tariffs[0].mode == GRADUATED or chosen is None:
        return _graduated(bucket, units, span, tariffs, share)
    slab, average, _index = chosen
    for row in tariffs:
        if row.slab == slab:
            return _average_charge(bucket, units, span, row, average)
    raise RatingError(
        _(
            "The %(bucket)s prices in force from %(first)s to %(last)s have no slab %(slab)s, the slab the "
            "period's average of %(average)s kWh per hour falls in; give them one."
        )
        % {
            "bucket": BUCKET_LABELS[bucket],
            "first": stretch.first,
            "last": stretch.last,
            "slab": slab,
            "average": average,
        }
    )


def _rows_by_days(stretches: Sequence[Stretch], kind: str) -> list[tuple[Any, int, date, date]]:
    """Each row of a kind (fixed, subsidies) in force in some parts, in order, with the calendar days
    of those parts and their first and last day (a row is in force on consecutive days)."""
    found: dict[Any, list] = {}
    for stretch in stretches:
        for row in getattr(stretch.schedule, kind):
            key = row.id if row.id is not None else row
            entry = found.get(key)
            if entry is None:
                found[key] = [row, stretch.days, stretch.first, stretch.last]
            else:
                entry[1] += stretch.days
                entry[3] = stretch.last
    return [tuple(entry) for entry in found.values()]


def _rows_trace(schedule: Schedule) -> dict:
    """The rows a part was rated on, by id, with the figures a person checks them by."""
    return {
        "tariffs": [
            {"id": row.id, "code": row.code, "bucket": row.bucket, "slab": row.slab, "rate": row.rate}
            for rows in schedule.by_bucket.values()
            for row in rows
        ],
        "taxes": [{"id": row.id, "name": row.name, "rate": row.rate} for row in schedule.taxes],
        "fixed": [{"id": row.id, "name": row.name, "amount": row.amount} for row in schedule.fixed],
        "subsidies": [{"id": row.id, "code": row.code} for row in schedule.subsidies],
    }


# --- a change of connection type within a period ---------------------------------------------------


class Part(NamedTuple):
    """A part of a period billed on one connection type's rows: its calendar days and its schedule."""

    days: int  # calendar days of the period in this part
    schedule: Schedule  # the part's type's rows in force (their fixed charges are the last part's alone)
    label: str  # how its lines say which part they are, e.g. "1-14 Mar"
    trace: dict  # what the trace says of it (its dates, its type)


def rate_parts(
    usage: Usage,
    parts: Sequence[Part],
    *,
    income: Decimal | None = None,
    arrears: Decimal = NO_MONEY,
    late_surcharge_percent: Decimal = ZERO,
) -> RatedBill:
    """A period split by a change of connection type, each part rated on its own type's rows.

    The rule (after DESIGN.md "Proration"): each part's share is its calendar days over the period's.
    Each bucket's units, the import and the billing days are shared by that share (units rounded to
    0.0001 kWh, the last part taking the remainder, so the parts add up to the period). Each part is
    rated on its own: its slab by its own average, its minimums by its own days, a tax line per part
    on that part's energy, its subsidies tested and capped on its own figures. The fixed charges are
    those of the type in force at the period's end (the last part), once.
    """
    total = sum(part.days for part in parts)
    shares = [Fraction(part.days, total) for part in parts]
    lines: list[Line] = []
    part_traces, energy_trace, subsidy_trace = [], [], []
    energy = taxes = subsidies = NO_MONEY
    for index, (part, share, units) in enumerate(
        zip(parts, shares, _shared({**usage.units, IMPORT: usage.total_import}, shares), strict=True)
    ):
        imported = units.pop(IMPORT)
        own = Usage(days=Fraction(usage.days) * share, units=units, total_import=imported)
        rated = rate_usage(own, _without_fixed(part.schedule), income=income)
        for line in rated.lines:
            lines.append(line._replace(label=f"{line.label}, {part.label}"[:120]))
        energy += rated.energy
        taxes += rated.taxes
        subsidies += rated.subsidies
        energy_trace += [{**step, "part": index} for step in rated.trace["energy"]]
        subsidy_trace += [{**test, "part": index} for test in rated.trace["subsidyTests"]]
        part_traces.append(
            {
                **part.trace,
                "calendarDays": part.days,
                "share": f"{part.days}/{total}",
                "billingDays": rated.trace["billingDays"],
                "units": dict(units),
                "totalImport": imported,
                "energy": rated.energy,
                "taxes": rated.taxes,
                "taxLines": len(rated.lines_of("tax")),
                "subsidies": rated.subsidies,
            }
        )
    fixed_schedule = parts[-1].schedule
    with localcontext(EXACT):
        current = energy + taxes + fixed_schedule.fixed_total - subsidies
        late = money(current * late_surcharge_percent / 100) if late_surcharge_percent else NO_MONEY
    span = Span.of(usage.days)
    ordered = sorted(lines, key=lambda line: _KIND_ORDER[line.kind])  # energy, taxes, then subsidies
    fixed_at = sum(1 for line in ordered if line.kind in ("energy", "tax"))
    return RatedBill(
        lines=(*ordered[:fixed_at], *fixed_schedule.fixed_lines, *ordered[fixed_at:]),
        energy=energy,
        taxes=taxes,
        fixed=fixed_schedule.fixed_total,
        subsidies=subsidies,
        current_charges=current,
        arrears=arrears,
        payable_before_due=current + arrears,
        late_surcharge=late,
        payable_after_due=current + arrears + late,
        trace=_with_meters(
            {
                "billingDays": _shown(span.p, span.q),
                "units": dict(usage.units),
                "totalImport": usage.total_import,
                "energy": energy_trace,
                "taxBase": energy,
                "subsidyTests": subsidy_trace,
                "parts": part_traces,
            },
            usage,
        ),
    )


_KIND_ORDER = {"energy": 0, "tax": 1, "subsidy": 2}


def _without_fixed(schedule: Schedule) -> Schedule:
    return Schedule(tariffs=schedule.tariffs, taxes=schedule.taxes, subsidies=schedule.subsidies)


def with_fees(bill: RatedBill, fees: Sequence[Line], *, late_surcharge_percent: Decimal = ZERO) -> RatedBill:
    """A rated (and settled) bill carrying one-off charges (a reconnection fee), each its own line of
    kind "fee": counted in the current charges, never taxed nor subsidised. A credit the bill would
    carry to the next one pays for them first; the late surcharge, a percent of a positive amount,
    follows them."""
    if not fees:
        return bill
    total = sum((line.amount for line in fees), NO_MONEY)
    offset = min(total, bill.credit_carried)
    carried = bill.credit_carried - offset
    current = bill.current_charges + total - offset
    late = (
        money(current * late_surcharge_percent / 100) if late_surcharge_percent and current > 0 else NO_MONEY
    )
    lines = [line for line in bill.lines if line.kind != "carried"]
    trace = dict(bill.trace)
    if carried:
        trace["creditCarried"] = carried
    else:
        trace.pop("creditCarried", None)
    return bill._replace(
        lines=(
            *lines,
            *fees,
            *([Line("carried", "Credit carried to your next bill", carried)] if carried else []),
        ),
        current_charges=current,
        payable_before_due=current + bill.arrears,
        late_surcharge=late,
        payable_after_due=current + bill.arrears + late,
        trace=trace,
        credit_carried=carried,
    )
