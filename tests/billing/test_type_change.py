"""A change of connection type within a period: split at 00:00 of the day it takes effect, each part
rated on its own type's rows (billing.rating.rate_parts), against an exact oracle; and end to end,
through invoice_issue and the billing run, with the bill explaining its parts."""

import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import factory
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.roles import Role
from accounts.sessions import SESSION_ROLE_KEY
from billing.models import ConnectionTypeChange
from billing.periods import TypeChange, type_parts
from billing.rating import ALL, GRADUATED, OFF_PEAK, PEAK, Part, Schedule, Usage, rate_parts
from invoicing.models import Invoice
from invoicing.selectors import pending_chunks
from invoicing.services import billing_run_chunk_bill, billing_run_start, invoice_issue
from providers.models import Authority, FixedCharge, TaxRule
from providers.services import schedule_row_add
from tests.billing.test_rating_oracle import half_up, schedules
from tests.factories import (
    ConnectionFactory,
    ConnectionTypeFactory,
    CustomerFactory,
    FlatTariffFactory,
    ProviderFactory,
    ReadingFactory,
    UserFactory,
)

D = Decimal
ZONE = ZoneInfo("Asia/Karachi")
A, B, C = 1, 2, 3


def at(month: int, day: int, hour: int = 9, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour, tzinfo=ZONE)


def change(day: date, from_type: int, to_type: int) -> TypeChange:
    return TypeChange(day, from_type, to_type, f"T{from_type}", f"T{to_type}")


# --- the parts ---------------------------------------------------------------------------------------


def test_a_period_is_split_at_the_day_the_change_takes_effect_by_calendar_days():
    # 28 January 09:00 to 28 February 09:00: the days 29 January to 28 February, 31 of them.
    parts = type_parts(at(1, 28), at(2, 28), [change(date(2024, 2, 15), A, B)])

    assert [(part.first, part.last, part.days, part.type_id) for part in parts] == [
        (date(2024, 1, 29), date(2024, 2, 14), 17, A),
        (date(2024, 2, 15), date(2024, 2, 28), 14, B),
    ]


@pytest.mark.parametrize(
    ("changes", "types"),
    [
        ([change(date(2024, 1, 29), A, B)], [B]),  # from the period's first day: the new type throughout
        ([change(date(2024, 1, 10), A, B)], [B]),  # before the period
        ([change(date(2024, 3, 1), A, B)], [A]),  # after it
        ([change(date(2024, 2, 5), A, B), change(date(2024, 2, 20), B, A)], [A, B, A]),
        ([change(date(2024, 2, 5), A, B), change(date(2024, 2, 5) + timedelta(days=10), B, C)], [A, B, C]),
    ],
)
def test_the_type_of_each_part_comes_from_the_changes(changes, types):
    assert [part.type_id for part in type_parts(at(1, 28), at(2, 28), changes)] == types


def test_an_estimated_period_to_00_00_ends_the_day_before():
    parts = type_parts(at(1, 28), at(2, 1, 0), [change(date(2024, 2, 1), A, B)])

    assert [(part.first, part.last, part.type_id) for part in parts] == [
        (date(2024, 1, 29), date(2024, 1, 31), A)
    ]


# --- rating the parts, against an oracle ---------------------------------------------------------------


def ten_thousandths(value: Fraction) -> Fraction:
    return Fraction(math.floor(value * 10_000 + Fraction(1, 2)), 10_000)


def part_oracle(days: Fraction, units: dict, imported: Fraction, schedule: Schedule, income) -> dict:
    """The rulebook for one part, in Fractions: its own slab by its own average, minimums by its days,
    taxes on its energy, subsidies on its import (no fixed charges: those are the period's)."""
    time_of_use = any(row.bucket != ALL for row in schedule.tariffs)
    buckets = (
        [(PEAK, units[PEAK]), (OFF_PEAK, units[OFF_PEAK])]
        if time_of_use
        else [(ALL, units[PEAK] + units[OFF_PEAK])]
    )
    energy = []
    for bucket, kwh in buckets:
        rows = sorted((row for row in schedule.tariffs if row.bucket == bucket), key=lambda row: row.band_low)
        if rows[0].mode == GRADUATED:
            charge = sum(
                max(min(kwh, Fraction(row.band_high or kwh)) - Fraction(row.band_low), Fraction(0))
                * Fraction(row.rate)
                for row in rows
            )
            energy.append(half_up(max(charge, Fraction(rows[0].min_amount) * days / 30)))
            continue
        average = kwh / (days * 24)
        (row,) = [
            r
            for r in rows
            if Fraction(r.band_low) <= average and (r.band_high is None or average < r.band_high)
        ]
        minimum = Fraction(row.min_amount) * days / 30
        energy.append(
            half_up(max(minimum + (kwh - Fraction(row.min_units) * days / 30) * Fraction(row.rate), minimum))
        )
    total = sum(energy)
    taxes = [half_up(Fraction(tax.rate) * total) for tax in schedule.taxes]
    subsidies, left = [], total
    for rule in schedule.subsidies:
        if rule.income_ceiling is not None:
            applies = income is not None and income <= rule.income_ceiling
        else:
            per_hour = imported / (days * 24)
            applies = rule.band_low <= per_hour and (rule.band_high is None or per_hour < rule.band_high)
        if applies:
            raw = (
                Fraction(rule.rate_per_unit) * imported
                if rule.rate_per_unit is not None
                else total * Fraction(rule.percent) / 100
            )
            subsidies.append(min(half_up(raw), left))
            left -= subsidies[-1]
    return {"energy": energy, "taxes": taxes, "subsidies": subsidies}


@hypothesis_settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(
    schedules(),
    schedules(),
    st.decimals(min_value=0, max_value=3000, places=4),
    st.decimals(min_value=0, max_value=3000, places=4),
    st.integers(min_value=28, max_value=31),
    st.integers(min_value=1, max_value=27),
    st.sampled_from([None, D("20000")]),
)
def test_each_part_is_rated_on_its_own_types_rows_and_the_fixed_charges_once(
    before, after, peak, off_peak, days, cut, income
):
    usage = Usage(days=Fraction(days), units={PEAK: peak, OFF_PEAK: off_peak}, total_import=peak + off_peak)
    parts = [Part(cut, before, "first", {}), Part(days - cut, after, "second", {})]

    bill = rate_parts(usage, parts, income=income, late_surcharge_percent=D("10"))

    first_units = {
        bucket: ten_thousandths(Fraction(value) * Fraction(cut, days))
        for bucket, value in usage.units.items()
    }
    second_units = {bucket: Fraction(value) - first_units[bucket] for bucket, value in usage.units.items()}
    first_import = ten_thousandths(Fraction(usage.total_import) * Fraction(cut, days))
    expected = [
        part_oracle(Fraction(cut), first_units, first_import, before, income),
        part_oracle(
            Fraction(days - cut), second_units, Fraction(usage.total_import) - first_import, after, income
        ),
    ]
    fixed = [half_up(Fraction(fee.amount)) for fee in after.fixed]
    got = {
        kind: [Fraction(line.amount) for line in bill.lines_of(kind)]
        for kind in ("energy", "tax", "fixed", "subsidy")
    }
    assert got == {
        "energy": expected[0]["energy"] + expected[1]["energy"],
        "tax": expected[0]["taxes"] + expected[1]["taxes"],
        "fixed": fixed,
        "subsidy": expected[0]["subsidies"] + expected[1]["subsidies"],
    }
    current = sum(got["energy"]) + sum(got["tax"]) + sum(fixed) - sum(got["subsidy"])
    assert Fraction(bill.current_charges) == current
    assert Fraction(bill.late_surcharge) == half_up(current / 10)
    assert [part["units"] for part in bill.trace["parts"]] == [
        {bucket: D(value.numerator) / value.denominator for bucket, value in first_units.items()},
        {bucket: D(value.numerator) / value.denominator for bucket, value in second_units.items()},
    ]


# --- end to end ------------------------------------------------------------------------------------


class AuthorityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Authority

    code = factory.Sequence(lambda n: f"AUTH{n}")
    name = factory.Sequence(lambda n: f"Authority {n}")


class TypeChangeFactory(factory.django.DjangoModelFactory):
    """A change of type as the lifecycle service records it (the connection switched alongside)."""

    class Meta:
        model = ConnectionTypeChange

    provider = factory.SelfAttribute("connection.provider")
    reason = "A shop opened in the house"


@pytest.fixture
def two_types(db):
    """Type HOME at 20.00 per kWh with a meter rent of 25.00, type SHOP at 40.00 with 50.00; a 10% tax."""
    provider = ProviderFactory()
    home = ConnectionTypeFactory(provider=provider, code="HOME")
    shop = ConnectionTypeFactory(provider=provider, code="SHOP")
    authority = AuthorityFactory(provider=provider)
    FlatTariffFactory(provider=provider, connection_type=home, rate=D("20.00"), code="HOME")
    FlatTariffFactory(provider=provider, connection_type=shop, rate=D("40.00"), code="SHOP")
    since = date(2020, 1, 1)
    for row in (
        FixedCharge(
            provider=provider, connection_type=home, name="Meter Rent", authority=authority, amount=D("25")
        ),
        FixedCharge(
            provider=provider, connection_type=shop, name="Meter Rent", authority=authority, amount=D("50")
        ),
        TaxRule(provider=provider, name="GST", authority=authority, rate=D("0.10")),
    ):
        row.valid_from = since
        schedule_row_add(row=row, created_by=None, today=since)
    return provider, home, shop


@pytest.fixture
def changed(two_types):
    """Read 31 December and 31 January at 09:00 (310 kWh); a shop from 11 January: connection switched."""
    provider, home, shop = two_types
    connection = ConnectionFactory(customer=CustomerFactory(provider=provider), connection_type=shop)
    ReadingFactory(connection=connection, taken_at=at(12, 31, year=2023), import_peak=D("1000"))
    ReadingFactory(connection=connection, taken_at=at(1, 31), import_peak=D("1310"))
    TypeChangeFactory(connection=connection, from_type=home, to_type=shop, effective_from=date(2024, 1, 11))
    return connection


EXPECTED_LINES = [
    # 1 to 10 January (10 of 31 calendar days: 100 kWh) as a home, 11 to 31 January (210 kWh) as a shop.
    ("energy", "Energy (all hours, slab 1), 1 Jan-10 Jan (HOME)", D("2000.00")),
    ("energy", "Energy (all hours, slab 1), 11 Jan-31 Jan (SHOP)", D("8400.00")),
    ("tax", "GST, 1 Jan-10 Jan (HOME)", D("200.00")),
    ("tax", "GST, 11 Jan-31 Jan (SHOP)", D("840.00")),
    ("fixed", "Meter Rent", D("50.00")),  # the shop's, once
]


@pytest.mark.django_db
def test_a_month_with_a_type_change_is_billed_in_two_parts(changed):
    creator = UserFactory(provider=changed.provider, roles=[Role.INVOICE_CREATOR])

    invoice = invoice_issue(connection=changed, period=date(2024, 1, 1), created_by=creator)

    assert [
        (line.kind, line.label, line.amount) for line in invoice.lines.order_by("position")
    ] == EXPECTED_LINES
    assert (invoice.energy_charge, invoice.tax_total, invoice.fixed_total, invoice.current_charges) == (
        D("10400.00"),
        D("1040.00"),
        D("50.00"),
        D("11490.00"),
    )
    assert [(part["type"], part["calendarDays"], part["share"]) for part in invoice.trace["parts"]] == [
        ("HOME", 10, "10/31"),
        ("SHOP", 21, "21/31"),
    ]


@pytest.mark.django_db
def test_the_billing_run_splits_the_period_too_and_the_bill_explains_its_parts(changed, client):
    run, _ = billing_run_start(provider=changed.provider, period=date(2024, 1, 1), chunk_size=10)
    for chunk_id in pending_chunks(run):
        billing_run_chunk_bill(chunk_id=chunk_id)
    invoice = Invoice.objects.get(connection=changed)
    staff = UserFactory(provider=changed.provider, roles=[Role.SUPER_CREATOR])
    client.force_login(staff)
    session = client.session
    session[SESSION_ROLE_KEY] = Role.SUPER_CREATOR
    session.save()

    page = client.get(f"/bills/{invoice.pk}").content.decode()

    assert [
        (line.kind, line.label, line.amount) for line in invoice.lines.order_by("position")
    ] == EXPECTED_LINES
    assert "The connection's type changed within this period" in page
    assert "1 Jan 2024 to 10 Jan 2024, type HOME: 10 calendar days (share 10/31)" in page
    assert "GST, 11 Jan-31 Jan (SHOP): 10% of the energy charges of 8,400.00" in page
