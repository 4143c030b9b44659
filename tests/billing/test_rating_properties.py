"""Properties of the rating engine that hold for any usage and any sound schedule (hypothesis)."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.rating import (
    ALL,
    OFF_PEAK,
    PEAK,
    FixedFee,
    Schedule,
    SubsidyRule,
    Tariff,
    Tax,
    Usage,
    money,
    rate_usage,
)

units = st.decimals(min_value=0, max_value=100_000, places=0)
rates = st.decimals(min_value=0, max_value=200, places=4)
days = st.decimals(min_value=Decimal("1"), max_value=Decimal("62"), places=6)
fractions = st.decimals(min_value=0, max_value=Decimal("0.5"), places=4)


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    """A time-of-use schedule with two slabs per bucket, taxes, fixed fees and a usage subsidy."""
    tariffs = []
    for bucket in (PEAK, OFF_PEAK):
        split = draw(st.decimals(min_value=Decimal("0.01"), max_value=5, places=2))
        tariffs += [
            Tariff(rate=draw(rates), bucket=bucket, band_high=split, slab=1, id=len(tariffs) + 1),
            Tariff(
                rate=draw(rates),
                bucket=bucket,
                band_low=split,
                slab=2,
                min_units=draw(units),
                min_amount=draw(st.decimals(min_value=0, max_value=5000, places=2)),
                id=len(tariffs) + 2,
            ),
        ]
    taxes = [Tax(f"T{n}", draw(fractions), id=n) for n in range(draw(st.integers(0, 3)))]
    fixed = [
        FixedFee(f"F{n}", draw(st.decimals(min_value=0, max_value=500, places=2)), id=n) for n in range(2)
    ]
    subsidy = SubsidyRule("S", rate_per_unit=draw(rates), band_low=Decimal("0"), band_high=None, id=1)
    return Schedule(tariffs=tuple(tariffs), taxes=tuple(taxes), fixed=tuple(fixed), subsidies=(subsidy,))


def _fields(tariff: Tariff) -> dict:
    return {name: getattr(tariff, name) for name in Tariff.__dataclass_fields__}


def usage(peak: Decimal, off_peak: Decimal, period: Decimal) -> Usage:
    return Usage(days=period, units={PEAK: peak, OFF_PEAK: off_peak}, total_import=peak + off_peak)


@settings(max_examples=200, deadline=None)
@given(schedules(), units, units, days)
def test_totals_are_sums_of_the_rounded_lines(schedule, peak, off_peak, period):
    bill = rate_usage(usage(peak, off_peak, period), schedule)

    assert all(line.amount == money(line.amount) for line in bill.lines)
    assert bill.energy == sum(line.amount for line in bill.lines_of("energy"))
    signed = sum(-line.amount if line.kind == "subsidy" else line.amount for line in bill.lines)
    assert bill.current_charges == signed


@settings(max_examples=200, deadline=None)
@given(schedules(), units, units, st.decimals(min_value=1, max_value=5000, places=0), days)
def test_more_units_never_lower_the_energy_charge_of_a_slab(schedule, peak, off_peak, more, period):
    # Each bucket's top slab, open to any average: within one slab more units cost more.
    top = Schedule(
        tariffs=tuple(
            Tariff(**{**_fields(t), "band_low": Decimal(0)}) for t in schedule.tariffs if t.slab == 2
        )
    )

    less = rate_usage(usage(peak, off_peak, period), top)
    more_usage = rate_usage(usage(peak + more, off_peak, period), top)

    assert more_usage.energy >= less.energy


@settings(max_examples=200, deadline=None)
@given(schedules(), units, units, days)
def test_subsidies_never_exceed_energy(schedule, peak, off_peak, period):
    bill = rate_usage(usage(peak, off_peak, period), schedule)

    assert bill.subsidies <= bill.energy


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=0, max_value=10**6, places=4), rates, days)
def test_a_flat_price_with_no_rules_is_exactly_kwh_times_price(kwh, price, period):
    schedule = Schedule(tariffs=(Tariff(rate=price, bucket=ALL),))

    bill = rate_usage(Usage(days=period, units={PEAK: kwh, OFF_PEAK: Decimal(0)}, total_import=kwh), schedule)

    assert bill.current_charges == money(kwh * price)


@settings(max_examples=100, deadline=None)
@given(schedules(), units, units, days, st.randoms(use_true_random=False))
def test_results_do_not_depend_on_the_order_rows_are_given_in(schedule, peak, off_peak, period, random):
    shuffled = Schedule(
        tariffs=tuple(random.sample(list(schedule.tariffs), len(schedule.tariffs))),
        taxes=tuple(random.sample(list(schedule.taxes), len(schedule.taxes))),
        fixed=tuple(random.sample(list(schedule.fixed), len(schedule.fixed))),
        subsidies=schedule.subsidies,
    )

    assert rate_usage(usage(peak, off_peak, period), shuffled) == rate_usage(
        usage(peak, off_peak, period), schedule
    )
