"""The rating engine against an exact oracle: the rulebook of DESIGN.md written again, simply, in Fractions.

The oracle below shares no code with billing/rating.py: it takes the period in whole microseconds,
keeps every figure an exact fraction and rounds each line half-up once, from its exact value. The
engine must agree with it to the cent on fractional kWh and 28- to 31-day periods, and on the cases
a 28-digit division gets wrong: charges whose exact value is a half-cent tie (a scaled minimum over
an odd number of days) and averages exactly on a slab's lower band. Periods split by a change of
prices (DESIGN.md "Proration") are checked against the rule written again the same way.
"""

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.rating import (
    ALL,
    GRADUATED,
    OFF_PEAK,
    PEAK,
    FixedFee,
    RatingError,
    Reading,
    Schedule,
    Stretch,
    SubsidyRule,
    Tariff,
    Tax,
    rate_period,
    rate_prorated,
    round_half_up,
    usage_between,
)

EXACT = settings(max_examples=300, deadline=None, derandomize=True, database=None)
START = datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC)


# The oracle.


def half_up(value: Fraction) -> Fraction:
    """To the cent, half-up, from the exact value (every amount here is at least zero)."""
    return Fraction(math.floor(value * 100 + Fraction(1, 2)), 100)


def exact_days(start: datetime, end: datetime) -> Fraction:
    elapsed = end - start
    return Fraction((elapsed.days * 86_400 + elapsed.seconds) * 10**6 + elapsed.microseconds, 86_400 * 10**6)


def oracle(start: Reading, end: Reading, schedule: Schedule, income: Decimal | None) -> dict:
    days = exact_days(start.at, end.at)
    imported = {
        PEAK: Fraction(end.import_peak - start.import_peak),
        OFF_PEAK: Fraction(end.import_off_peak - start.import_off_peak),
    }
    exported = {
        PEAK: Fraction(end.export_peak - start.export_peak),
        OFF_PEAK: Fraction(end.export_off_peak - start.export_off_peak),
    }
    net = {bucket: max(imported[bucket] - exported[bucket], Fraction(0)) for bucket in (PEAK, OFF_PEAK)}
    if any(row.bucket != ALL for row in schedule.tariffs):
        buckets = [(PEAK, net[PEAK]), (OFF_PEAK, net[OFF_PEAK])]
    else:
        buckets = [(ALL, net[PEAK] + net[OFF_PEAK])]

    energy_lines, slabs = [], []
    for bucket, units in buckets:
        rows = sorted((row for row in schedule.tariffs if row.bucket == bucket), key=lambda row: row.band_low)
        if rows[0].mode == GRADUATED:  # each block of the kWh at its own rate; the first row's minimum
            charge = sum(
                max(min(units, Fraction(row.band_high or units)) - Fraction(row.band_low), Fraction(0))
                * Fraction(row.rate)
                for row in rows
            )
            energy_lines.append(half_up(max(charge, Fraction(rows[0].min_amount) * days / 30)))
            slabs.append(None)
            continue
        average = units / (days * 24)
        (row,) = [
            row
            for row in schedule.tariffs
            if row.bucket == bucket
            and Fraction(row.band_low) <= average
            and (row.band_high is None or average < Fraction(row.band_high))
        ]
        min_units = Fraction(row.min_units) * days / 30
        min_amount = Fraction(row.min_amount) * days / 30
        charge = min_amount + (units - min_units) * Fraction(row.rate)
        energy_lines.append(half_up(max(charge, min_amount)))
        slabs.append(row.slab)
    energy = sum(energy_lines)

    taxes = [half_up(Fraction(tax.rate) * energy) for tax in schedule.taxes]
    fixed = [half_up(Fraction(fee.amount)) for fee in schedule.fixed]
    total_import = imported[PEAK] + imported[OFF_PEAK]
    subsidies, left = [], energy
    for rule in schedule.subsidies:
        if rule.income_ceiling is not None:
            applies = income is not None and income <= rule.income_ceiling
        else:
            per_hour = total_import / (days * 24)
            applies = Fraction(rule.band_low) <= per_hour and (
                rule.band_high is None or per_hour < Fraction(rule.band_high)
            )
        if applies:
            if rule.rate_per_unit is not None:
                amount = half_up(Fraction(rule.rate_per_unit) * total_import)
            else:
                amount = half_up(energy * Fraction(rule.percent) / 100)
            subsidies.append(min(amount, left))  # never more than energy: the last lines give way
            left -= subsidies[-1]
    current = energy + sum(taxes) + sum(fixed) - sum(subsidies)
    return {
        "energy": energy_lines,
        "slabs": slabs,
        "taxes": taxes,
        "fixed": fixed,
        "subsidies": subsidies,
        "current": current,
        "late": half_up(current * 10 / 100),
    }


def engine(start: Reading, end: Reading, schedule: Schedule, income: Decimal | None) -> dict:
    bill = rate_period(start, end, schedule, income=income, late_surcharge_percent=Decimal("10"))
    return {
        "energy": [Fraction(line.amount) for line in bill.lines_of("energy")],
        "slabs": [trace.get("slab") for trace in bill.trace["energy"]],
        "taxes": [Fraction(line.amount) for line in bill.lines_of("tax")],
        "fixed": [Fraction(line.amount) for line in bill.lines_of("fixed")],
        "subsidies": [Fraction(line.amount) for line in bill.lines_of("subsidy")],
        "current": Fraction(bill.current_charges),
        "late": Fraction(bill.late_surcharge),
    }


# Strategies: fractional kWh, 28 to 31 days to the second, any sound schedule.

kwh = st.decimals(min_value=0, max_value=6000, places=4)
rates = st.decimals(min_value=0, max_value=80, places=4)
seconds = st.integers(min_value=28 * 86_400, max_value=31 * 86_400)


def reading(
    at: datetime, peak: Decimal, off_peak: Decimal = Decimal(0), export: Decimal = Decimal(0)
) -> Reading:
    return Reading(at=at, import_peak=peak, import_off_peak=off_peak, export_peak=export)


@st.composite
def slabs(draw: st.DrawFn, bucket: str, first_id: int) -> list[Tariff]:
    """One to three slabs covering every average: [0, a), [a, b), [b, open)."""
    cuts = sorted(set(draw(st.lists(st.decimals(min_value="0.01", max_value=12, places=2), max_size=2))))
    lows, highs = [Decimal(0), *cuts], [*cuts, None]
    return [
        Tariff(
            rate=draw(rates),
            bucket=bucket,
            band_low=low,
            band_high=high,
            min_units=draw(st.decimals(min_value=0, max_value=400, places=4)),
            min_amount=draw(st.decimals(min_value=0, max_value=3000, places=2)),
            slab=slab,
            id=first_id + slab,
        )
        for slab, (low, high) in enumerate(zip(lows, highs, strict=True), start=1)
    ]


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    time_of_use = draw(st.booleans())
    tariffs = draw(slabs(PEAK, 0)) + draw(slabs(OFF_PEAK, 10)) if time_of_use else draw(slabs(ALL, 0))
    taxes = [Tax(f"T{n}", draw(st.decimals(min_value=0, max_value="0.3", places=4)), id=n) for n in range(2)]
    fixed = [
        FixedFee(f"F{n}", draw(st.decimals(min_value=0, max_value=300, places=2)), id=n) for n in range(2)
    ]
    subsidies = [
        SubsidyRule(
            "USAGE",
            rate_per_unit=draw(st.decimals(min_value=0, max_value=5, places=4)),
            band_low=Decimal(0),
            band_high=draw(st.decimals(min_value="0.5", max_value=10, places=2)),
            id=1,
        ),
        SubsidyRule(
            "INCOME",
            percent=draw(st.decimals(min_value=0, max_value=100, places=2)),
            income_ceiling=Decimal("50000"),
            id=2,
        ),
    ]
    return Schedule(
        tariffs=tuple(tariffs), taxes=tuple(taxes), fixed=tuple(fixed), subsidies=tuple(subsidies)
    )


@EXACT
@given(
    schedules(),
    kwh,
    kwh,
    st.decimals(min_value=0, max_value=100, places=4),
    seconds,
    st.sampled_from([None, Decimal("20000"), Decimal("80000")]),
)
def test_every_line_is_the_exact_value_rounded_half_up(schedule, peak, off_peak, export, elapsed, income):
    start = reading(START, Decimal("1000.0000"), Decimal("5000.0000"))
    end = reading(START + timedelta(seconds=elapsed), 1000 + peak, 5000 + off_peak, export)

    assert engine(start, end, schedule, income) == oracle(start, end, schedule, income)


@st.composite
def half_cent_minimums(draw: st.DrawFn) -> tuple[Decimal, int]:
    """A minimum amount and a period of whole minutes whose scaled minimum is exactly half a cent over.

    In cents the scaled minimum is M x minutes / 43,200; with G = gcd(minutes, 21,600) and an odd t,
    M = 21,600 x t / G makes it t x (minutes / G) / 2, a tie whenever minutes / G is odd."""
    minutes = draw(
        st.integers(min_value=28 * 1440, max_value=31 * 1440).filter(
            lambda m: (m // math.gcd(m, 21_600)) % 2 == 1
        )
    )
    odd = draw(st.integers(min_value=0, max_value=40)) * 2 + 1
    return Decimal(21_600 * odd // math.gcd(minutes, 21_600)) / 100, minutes


@EXACT
@given(half_cent_minimums(), st.decimals(min_value=0, max_value=2000, places=4), rates)
def test_a_minimum_scaled_to_a_half_cent_rounds_up(minimum, units, rate):
    min_amount, minutes = minimum
    # Minimum units beyond any usage: the scaled minimum amount is the charge.
    schedule = Schedule(tariffs=(Tariff(rate=rate, min_units=Decimal(100_000), min_amount=min_amount),))
    start = reading(START, Decimal(0))
    end = reading(START + timedelta(minutes=minutes), units)

    scaled = Fraction(min_amount) * minutes / 43_200  # min amount x (minutes / 1,440) / 30
    assert (scaled * 200) % 2 == 1  # exactly half a cent over
    assert engine(start, end, schedule, None) == oracle(start, end, schedule, None)
    assert engine(start, end, schedule, None)["energy"] == [scaled + Fraction(1, 200)]


@EXACT
@given(half_cent_minimums(), st.decimals(min_value=0, max_value=2000, places=2), st.integers(1, 60))
def test_a_half_cent_tie_above_the_minimum_rounds_up(minimum, units, rate):
    min_amount, minutes = minimum
    # No minimum units: the charge is the scaled minimum (a half-cent tie) plus whole cents of energy.
    schedule = Schedule(tariffs=(Tariff(rate=Decimal(rate), min_amount=min_amount),))
    start = reading(START, Decimal(0))
    end = reading(START + timedelta(minutes=minutes), units)

    charge = Fraction(min_amount) * minutes / 43_200 + Fraction(units) * rate
    assert (charge * 200) % 2 == 1  # exactly half a cent over
    assert engine(start, end, schedule, None)["energy"] == [half_up(charge)] == [charge + Fraction(1, 200)]


@EXACT
@given(half_cent_minimums(), kwh, rates, rates, st.decimals(min_value="0.01", max_value=3000, places=2))
def test_graduated_blocks_and_their_scaled_minimum_round_half_up(minimum, units, low_rate, high_rate, block):
    min_amount, minutes = minimum
    schedule = Schedule(
        tariffs=(
            Tariff(rate=low_rate, band_high=block, min_amount=min_amount, mode=GRADUATED, slab=1, id=1),
            Tariff(rate=high_rate, band_low=block, mode=GRADUATED, slab=2, id=2),
        )
    )
    start = reading(START, Decimal(0))
    end = reading(START + timedelta(minutes=minutes), units)

    assert engine(start, end, schedule, None) == oracle(start, end, schedule, None)


@EXACT
@given(
    st.integers(min_value=28 * 1440, max_value=31 * 1440),
    st.integers(min_value=1, max_value=1200),
    rates,
    rates,
)
def test_an_average_exactly_on_a_band_takes_the_slab_that_starts_there(
    minutes, band_cents, low_rate, high_rate
):
    # A band of 3k cents: units = band x 24 x minutes / 1,440 = k x minutes / 2,000 kWh, to 0.0001 kWh.
    band = Decimal(band_cents * 3) / 100
    units = Decimal(band_cents * minutes * 5) / 10_000
    schedule = Schedule(
        tariffs=(
            Tariff(rate=low_rate, band_high=band, slab=1, id=1),
            Tariff(rate=high_rate, band_low=band, slab=2, id=2),
        )
    )
    start = reading(START, Decimal(0))
    end = reading(START + timedelta(minutes=minutes), units)

    assert Fraction(units) / (Fraction(minutes, 1440) * 24) == Fraction(band)
    assert engine(start, end, schedule, None) == oracle(start, end, schedule, None)
    assert engine(start, end, schedule, None)["slabs"] == [2]


@EXACT
@given(seconds, st.integers(min_value=0, max_value=999_999))
def test_billing_days_are_exact_and_round_half_up(elapsed, microseconds):
    period = timedelta(seconds=elapsed, microseconds=microseconds)
    days = usage_between(reading(START, Decimal(0)), reading(START + period, Decimal(1))).days

    assert days == exact_days(START, START + period)
    assert Fraction(round_half_up(days, Decimal("0.000001"))) == Fraction(
        math.floor(days * 10**6 + Fraction(1, 2)), 10**6
    )


def test_a_period_ending_half_a_millionth_of_a_day_over_rounds_its_billing_days_up():
    # 31 days and 27 seconds: 31.0003125 days.
    days = usage_between(
        reading(START, Decimal(0)), reading(START + timedelta(days=31, seconds=27), Decimal(1))
    ).days

    assert round_half_up(days, Decimal("0.000001")) == Decimal("31.000313")


# Proration (DESIGN.md "Proration"), written again the same simple way: a period of whole calendar
# days split in two, the first part on one schedule's rows, the rest on another's.


def ten_thousandths(value: Fraction) -> Fraction:
    return Fraction(math.floor(value * 10_000 + Fraction(1, 2)), 10_000)


def prorated_oracle(
    days: Fraction, calendar: list[int], figures: dict, parts: list[Schedule], income: Decimal | None
) -> dict | None:
    """The bill of a period of `days` billing days whose parts have `calendar` days each, rated on
    `parts`; `figures`: net kWh per bucket (peak, off-peak, all) and the import. None: refused (a part
    lacks the slab number the period's average chose)."""
    total = sum(calendar)
    shares = [Fraction(part_days, total) for part_days in calendar]
    shared = [
        {name: ten_thousandths(value * share) for name, value in figures.items()} for share in shares[:-1]
    ]
    shared.append({name: value - sum(part[name] for part in shared) for name, value in figures.items()})
    buckets = [PEAK, OFF_PEAK] if parts[-1].time_of_use else [ALL]
    slab = {}
    for bucket in buckets:
        average = figures[bucket] / (days * 24)
        (row,) = [
            row
            for row in parts[-1].tariffs
            if row.bucket == bucket
            and Fraction(row.band_low) <= average
            and (row.band_high is None or average < Fraction(row.band_high))
        ]
        slab[bucket] = row.slab
    energy_lines, taxes, part_energy = [], [], []
    for schedule, share, own in zip(parts, shares, shared, strict=True):
        part_days = days * share
        energy = Fraction(0)
        for bucket in buckets:
            rows = [row for row in schedule.tariffs if row.bucket == bucket and row.slab == slab[bucket]]
            if not rows:
                return None
            (row,) = rows
            min_units = Fraction(row.min_units) * part_days / 30
            min_amount = Fraction(row.min_amount) * part_days / 30
            line = half_up(max(min_amount + (own[bucket] - min_units) * Fraction(row.rate), min_amount))
            energy_lines.append(line)
            energy += line
        part_energy.append(energy)
        taxes += [half_up(Fraction(tax.rate) * energy) for tax in schedule.taxes]
    energy = sum(energy_lines)

    def in_parts(kind: str) -> list:
        """Each row of a kind, in the order first met, with the indexes of the parts it is in force in."""
        rows: dict = {}
        for index, schedule in enumerate(parts):
            for row in getattr(schedule, kind):
                rows.setdefault(row.id, (row, []))[1].append(index)
        return list(rows.values())

    fixed = [
        half_up(Fraction(fee.amount) * sum(calendar[index] for index in indexes) / total)
        for fee, indexes in in_parts("fixed")
    ]
    per_hour = figures["import"] / (days * 24)
    subsidies, left = [], energy
    for rule, indexes in in_parts("subsidies"):
        if rule.income_ceiling is not None:
            applies = income is not None and income <= rule.income_ceiling
        else:
            applies = Fraction(rule.band_low) <= per_hour and (
                rule.band_high is None or per_hour < Fraction(rule.band_high)
            )
        if applies:
            every = len(indexes) == len(parts)
            if rule.rate_per_unit is not None:
                base = figures["import"] if every else sum(shared[index]["import"] for index in indexes)
                amount = half_up(Fraction(rule.rate_per_unit) * base)
            else:
                base = energy if every else sum(part_energy[index] for index in indexes)
                amount = half_up(base * Fraction(rule.percent) / 100)
            subsidies.append(min(amount, left))
            left -= subsidies[-1]
    current = energy + sum(taxes) + sum(fixed) - sum(subsidies)
    return {
        "energy": energy_lines,
        "taxes": taxes,
        "fixed": fixed,
        "subsidies": subsidies,
        "current": current,
        "late": half_up(current * 10 / 100),
    }


def renumbered(schedule: Schedule, shared_with: Schedule) -> Schedule:
    """`schedule`'s rows as rows of their own (ids + 100), but for the first fixed charge and the first
    subsidy, which stay `shared_with`'s: rows in force in both parts."""
    own = {"tariffs": schedule.tariffs, "taxes": schedule.taxes}
    return Schedule(
        **{kind: tuple(replace(row, id=row.id + 100) for row in rows) for kind, rows in own.items()},
        fixed=(shared_with.fixed[0], replace(schedule.fixed[1], id=101)),
        subsidies=(shared_with.subsidies[0], replace(schedule.subsidies[1], id=102)),
    )


@EXACT
@given(
    st.tuples(schedules(), schedules()).filter(lambda pair: pair[0].time_of_use == pair[1].time_of_use),
    kwh,
    kwh,
    st.decimals(min_value=0, max_value=100, places=4),
    seconds,
    st.integers(min_value=28, max_value=31),
    st.integers(min_value=1, max_value=27),
    st.sampled_from([None, Decimal("20000"), Decimal("80000")]),
)
def test_a_split_period_is_rated_part_by_part_to_the_exact_value(
    pair, peak, off_peak, export, elapsed, calendar_days, cut, income
):
    before, after = pair[0], renumbered(pair[1], pair[0])
    start = reading(START, Decimal("1000.0000"), Decimal("5000.0000"))
    end = reading(START + timedelta(seconds=elapsed), 1000 + peak, 5000 + off_peak, export)
    usage = usage_between(start, end)
    first = date(2024, 4, 1)
    stretches = [
        Stretch(first, first + timedelta(days=cut - 1), before),
        Stretch(first + timedelta(days=cut), first + timedelta(days=calendar_days - 1), after),
    ]
    net_peak, net_off_peak = Fraction(usage.units[PEAK]), Fraction(usage.units[OFF_PEAK])
    figures = {PEAK: net_peak, OFF_PEAK: net_off_peak, ALL: net_peak + net_off_peak}
    figures["import"] = Fraction(usage.total_import)

    expected = prorated_oracle(
        exact_days(start.at, end.at), [cut, calendar_days - cut], figures, [before, after], income
    )

    if expected is None:
        with pytest.raises(RatingError, match="have no slab"):
            rate_prorated(usage, stretches, income=income)
        return
    bill = rate_prorated(usage, stretches, income=income, late_surcharge_percent=Decimal("10"))
    assert {
        "energy": [Fraction(line.amount) for line in bill.lines_of("energy")],
        "taxes": [Fraction(line.amount) for line in bill.lines_of("tax")],
        "fixed": [Fraction(line.amount) for line in bill.lines_of("fixed")],
        "subsidies": [Fraction(line.amount) for line in bill.lines_of("subsidy")],
        "current": Fraction(bill.current_charges),
        "late": Fraction(bill.late_surcharge),
    } == expected
