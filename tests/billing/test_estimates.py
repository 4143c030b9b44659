"""Estimated reads (DESIGN.md "Estimated reads"), against an exact oracle in Fractions: the estimate's
basis and units, and the true-up. The estimates' usage-dependent lines (energy, taxes, subsidies) plus
the true-up's come to those of one period over the whole span, to the cent; each bill carries its own
month's fixed charges; a true-up below zero is a zero bill and a credit carried on."""

import math
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.periods import LAST_THREE, THOSE_THERE_ARE, YEAR_BEFORE, actual_periods, estimate_reading
from billing.rating import (
    NO_MONEY,
    OFF_PEAK,
    PEAK,
    Estimated,
    Reading,
    Schedule,
    Tariff,
    rate_usage,
    settle,
    usage_between,
)
from tests.billing.test_rating_oracle import exact_days, half_up, oracle, schedules

D = Decimal
ZONE = ZoneInfo("Asia/Karachi")


def at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, tzinfo=ZONE)


def reading(when: datetime, *registers: str) -> Reading:
    return Reading(when, *(D(value) for value in registers))


def to_ten_thousandths(value: Fraction) -> Fraction:
    return Fraction(math.floor(value * 10_000 + Fraction(1, 2)), 10_000)


# --- the basis -------------------------------------------------------------------------------------


HISTORY = [
    reading(at(2023, 9, 28), "0", "0", "0", "0"),
    reading(at(2023, 10, 10), "40", "80", "0", "0"),  # mid-month: no period ends here
    reading(at(2023, 10, 28), "100", "200", "3", "0"),
    reading(at(2023, 11, 28), "210", "390", "5", "1"),
    reading(at(2023, 12, 28), "300", "600", "9", "1"),
]


def test_the_actual_periods_run_from_the_first_reading_and_between_month_closing_readings():
    periods = actual_periods(HISTORY)

    assert [(p.start.at, p.end.at, p.units) for p in periods] == [
        (at(2023, 9, 28), at(2023, 10, 28), (D(100), D(200), D(3), D(0))),
        (at(2023, 10, 28), at(2023, 11, 28), (D(110), D(190), D(2), D(1))),
        (at(2023, 11, 28), at(2023, 12, 28), (D(90), D(210), D(4), D(0))),
    ]


def test_an_estimate_averages_the_last_three_periods_per_register_over_their_days():
    start, end_at = HISTORY[-1], at(2024, 2, 1, 0)

    estimate = estimate_reading(start, end_at, actual_periods(HISTORY), 2024, 1)

    days = exact_days(start.at, end_at)  # 34 days 15 hours
    assert days == Fraction(277, 8)
    per_day = [Fraction(300, 91), Fraction(600, 91), Fraction(9, 91), Fraction(1, 91)]  # 30 + 31 + 30 days
    assert estimate.basis == LAST_THREE
    assert [Fraction(units) for units in estimate.units] == [to_ten_thousandths(p * days) for p in per_day]
    assert estimate.units == (D("114.1484"), D("228.2967"), D("3.4245"), D("0.3805"))
    assert estimate.end == Reading(end_at, D("414.1484"), D("828.2967"), D("12.4245"), D("1.3805"))


def test_with_fewer_than_three_periods_the_same_month_a_year_before_is_the_basis():
    readings = [
        reading(at(2023, 1, 1), "0", "0"),
        reading(at(2023, 1, 31), "620", "0"),  # January 2023: 30 days, 620 kWh
        reading(at(2023, 12, 20), "700", "0"),  # a long gap, then a first period again
    ]

    estimate = estimate_reading(readings[-1], at(2024, 2, 1, 0), actual_periods(readings), 2024, 1)

    assert estimate.basis == YEAR_BEFORE
    assert estimate.daily[0] == Fraction(620, 30)  # 1 Jan 09:00 to 31 Jan 09:00: 30 days
    assert [p.end.at for p in estimate.periods] == [at(2023, 1, 31)]


def test_with_neither_the_periods_there_are_are_the_basis_and_with_none_there_is_no_estimate():
    two = HISTORY[2:]

    estimate = estimate_reading(two[-1], at(2024, 2, 1, 0), actual_periods(two), 2024, 1)

    assert (estimate.basis, len(estimate.periods)) == (THOSE_THERE_ARE, 2)
    assert estimate_reading(HISTORY[0], at(2024, 2, 1, 0), actual_periods(HISTORY[:1]), 2024, 1) is None


def test_periods_after_the_estimates_start_are_not_its_history():
    estimate = estimate_reading(HISTORY[2], at(2023, 12, 1, 0), actual_periods(HISTORY), 2023, 11)

    assert estimate.basis == THOSE_THERE_ARE
    assert [p.end.at for p in estimate.periods] == [at(2023, 10, 28)]


# --- estimates and their true-up, against the oracle ---------------------------------------------------

kwh = st.decimals(min_value=0, max_value=900, places=4)
MODEST = settings(max_examples=120, deadline=None, derandomize=True, database=None)


def usage_charges(figures: dict) -> Fraction:
    return sum(figures["energy"]) + sum(figures["taxes"]) - sum(figures["subsidies"])


def lines_of(figures: dict) -> dict:
    return {kind: figures[kind] for kind in ("energy", "taxes", "fixed", "subsidies")}


def figures_of(bill) -> dict:
    return {
        "energy": [Fraction(line.amount) for line in bill.lines_of("energy")],
        "taxes": [Fraction(line.amount) for line in bill.lines_of("tax")],
        "fixed": [Fraction(line.amount) for line in bill.lines_of("fixed")],
        "subsidies": [Fraction(line.amount) for line in bill.lines_of("subsidy")],
    }


@MODEST
@given(
    schedules(),
    st.lists(st.tuples(kwh, kwh), min_size=1, max_size=4),  # the history's monthly units
    st.integers(min_value=1, max_value=3),  # estimated months before the actual reading
    st.tuples(kwh, kwh, st.integers(min_value=0, max_value=4)),  # the actual reading: units a month
    st.sampled_from([None, D("20000")]),
)
def test_estimates_and_their_true_up_add_up_to_one_period_over_the_whole_span(
    schedule, history, estimated_months, actual, income
):
    readings, registers = [], [D(5000), D(7000)]
    for index, (peak, off_peak) in enumerate([(D(0), D(0)), *history]):
        registers = [registers[0] + peak, registers[1] + off_peak]
        readings.append(Reading(at(2023, 12 - len(history) + index, 27 + index % 3, 8 + index), *registers))
    anchor = readings[-1]
    periods = actual_periods(readings)

    estimated, start = [], anchor
    for step in range(estimated_months):
        month = step + 1
        estimate = estimate_reading(start, at(2024, month + 1, 1, 0), periods, 2024, month)
        usage = usage_between(start, estimate.end)
        bill = rate_usage(usage, schedule, income=income, late_surcharge_percent=D("10"))
        # An estimate is rated like any other bill, and carries its month's fixed charges.
        assert figures_of(bill) == lines_of(oracle(start, estimate.end, schedule, income))
        estimated.append(
            Estimated(
                f"E{month}",
                date(2024, month, 1),
                bill.energy,
                bill.taxes,
                bill.subsidies,
                usage.units,
            )
        )
        start = estimate.end
    peak, off_peak, extra_days = actual
    months = estimated_months + 1
    closing = Reading(
        at(2024, months, 20 + extra_days, 17),
        anchor.import_peak + peak * months,
        anchor.import_off_peak + off_peak * months,
    )

    span = rate_usage(usage_between(anchor, closing), schedule, income=income, late_surcharge_percent=D("10"))
    true_up = settle(span, estimates=estimated, late_surcharge_percent=D("10"))

    whole = oracle(anchor, closing, schedule, income)
    taken_back = sum(Fraction(e.charged) for e in estimated)
    assert figures_of(true_up) == lines_of(whole)  # the whole span's lines, and this month's fixed charges
    assert Fraction(true_up.estimated_billed) == taken_back
    own_usage = usage_charges(figures_of(true_up)) - taken_back
    assert taken_back + own_usage == usage_charges(whole)  # to the cent, by construction of the lines
    due = own_usage + sum(whole["fixed"])
    assert Fraction(true_up.current_charges) == max(due, Fraction(0))
    assert Fraction(true_up.credit_carried) == max(-due, Fraction(0))
    assert Fraction(true_up.late_surcharge) == half_up(
        max(due, Fraction(0)) / 10
    )  # on a positive amount only
    subtracted = sum(Fraction(line.amount) for line in true_up.lines if line.kind in ("subsidy", "estimate"))
    added = sum(Fraction(line.amount) for line in true_up.lines if line.kind not in ("subsidy", "estimate"))
    assert added - subtracted == Fraction(true_up.current_charges)  # the lines add up on paper


def test_a_true_up_below_zero_is_a_zero_bill_carrying_the_credit_to_the_next():
    schedule = Schedule(tariffs=(Tariff(rate=D("32.50")),))
    anchor = reading(at(2023, 12, 28), "0", "0")
    high = Estimated(
        "P-2024-000001",
        date(2024, 1, 1),
        D("9750.00"),
        D("0.00"),
        D("0.00"),
        {PEAK: D(300), OFF_PEAK: D(0)},
    )
    closing = reading(at(2024, 2, 28), "100", "0")
    span = rate_usage(usage_between(anchor, closing), schedule, late_surcharge_percent=D("10"))

    true_up = settle(span, estimates=[high], late_surcharge_percent=D("10"))
    next_bill = settle(
        span, credit=true_up.credit_carried, credit_from="P-2024-000002", late_surcharge_percent=D("10")
    )

    assert (span.current_charges, true_up.current_charges, true_up.credit_carried) == (
        D("3250.00"),
        NO_MONEY,
        D("6500.00"),
    )
    assert (true_up.late_surcharge, true_up.payable_after_due) == (NO_MONEY, NO_MONEY)
    assert [line.kind for line in true_up.lines] == ["energy", "estimate", "carried"]
    assert (next_bill.current_charges, next_bill.credit_carried) == (NO_MONEY, D("3250.00"))
