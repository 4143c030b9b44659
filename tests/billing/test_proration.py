"""Proration (DESIGN.md "Proration"): a period split wherever a tariff, tax, fixed charge or subsidy
row starts or ends inside it, each part rated on the rows in force in it (billing.rating.rate_prorated
on ScheduleHistory's stretches); and end to end, through invoice_issue, a bill of typed kWh and the
billing run, with the bill page and PDF showing the parts.

Every expected figure is worked out here by hand from the rule, never taken from the engine.
"""

from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import factory
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings

from accounts.roles import Role
from accounts.sessions import SESSION_ROLE_KEY
from billing.periods import period_days
from billing.rating import (
    OFF_PEAK,
    PEAK,
    FixedFee,
    RatingError,
    ScheduleHistory,
    SubsidyRule,
    Tariff,
    Tax,
    Usage,
    rate_prorated,
    rate_usage,
)
from invoicing.models import Invoice
from invoicing.pdf import invoice_pdf
from invoicing.selectors import pending_chunks
from invoicing.services import billing_run_chunk_bill, billing_run_start, invoice_issue
from providers.models import Authority, TaxRule
from tests.billing.test_rating_oracle import schedules
from tests.factories import (
    ConnectionFactory,
    CustomerFactory,
    FlatTariffFactory,
    ProviderFactory,
    ReadingFactory,
    UserFactory,
)
from tests.invoicing.test_pdf import text_of

D = Decimal
ZONE = ZoneInfo("Asia/Karachi")
APRIL = (date(2024, 4, 1), date(2024, 4, 30))  # 30 calendar days


def april(peak: str, off_peak: str = "0") -> Usage:
    """Thirty whole billing days of April."""
    return Usage(
        days=Fraction(30), units={PEAK: D(peak), OFF_PEAK: D(off_peak)}, total_import=D(peak) + D(off_peak)
    )


def flat(rate: str, row_id: int, valid_from: date | None = None, valid_to: date | None = None) -> Tariff:
    return Tariff(rate=D(rate), id=row_id, valid_from=valid_from, valid_to=valid_to)


def rated(history: ScheduleHistory, usage: Usage, first: date = APRIL[0], last: date = APRIL[1], **terms):
    return rate_prorated(usage, history.stretches(None, first, last), **terms)


def lines(bill) -> list[tuple[str, str, Decimal]]:
    return [(line.kind, line.label, line.amount) for line in bill.lines]


# --- where a period splits ---------------------------------------------------------------------------


def test_a_period_covers_the_days_after_the_opening_reading_up_to_the_closing_one():
    # A reading at 00:00 belongs to the day before: 1 April 00:00 to 1 May 00:00 is April.
    assert period_days(datetime(2024, 4, 1, tzinfo=ZONE), datetime(2024, 5, 1, tzinfo=ZONE)) == APRIL
    assert (
        period_days(datetime(2024, 3, 31, 23, 59, tzinfo=ZONE), datetime(2024, 4, 30, 9, tzinfo=ZONE))
        == APRIL
    )


def test_a_change_on_the_periods_first_day_or_after_its_last_splits_nothing():
    history = ScheduleHistory(
        tariffs=[flat("10", 1, valid_to=date(2024, 4, 1)), flat("12", 2, valid_from=date(2024, 4, 1))],
        fixed=[FixedFee("TV Fee", D("35"), id=1, valid_from=date(2024, 5, 1))],
    )

    (stretch,) = history.stretches(None, *APRIL)

    assert (stretch.first, stretch.last, [row.rate for row in stretch.schedule.tariffs]) == (
        *APRIL,
        [D("12")],
    )
    assert stretch.schedule.fixed == ()


def test_a_row_of_another_connection_type_splits_nothing():
    history = ScheduleHistory(
        tariffs=[flat("10", 1), Tariff(rate=D("50"), id=2, connection_type=7, valid_from=date(2024, 4, 11))]
    )

    assert [(s.first, s.last) for s in history.stretches(8, *APRIL)] == [APRIL]


# --- the rule, worked by hand ------------------------------------------------------------------------


def test_a_price_change_mid_period_rates_each_part_at_its_own_price_and_taxes_each_part():
    # 1-10 April at 10.00, 11-30 April at 12.00; GST 17% all month. 301.7 kWh in 30 days.
    history = ScheduleHistory(
        tariffs=[flat("10", 1, valid_to=date(2024, 4, 11)), flat("12", 2, valid_from=date(2024, 4, 11))],
        taxes=[Tax("GST", D("0.17"), id=1)],
    )

    bill = rated(history, april("201.7", "100"))

    # Shares 10/30 and 20/30: 301.7 / 3 = 100.56666... -> 100.5667 kWh; the last part 201.1333 kWh.
    # 100.5667 x 10 = 1005.667 -> 1005.67; 201.1333 x 12 = 2413.5996 -> 2413.60.
    # GST: 0.17 x 1005.67 = 170.9639 -> 170.96; 0.17 x 2413.60 = 410.312 -> 410.31.
    assert lines(bill) == [
        ("energy", "Energy (all hours, slab 1), 1 Apr-10 Apr", D("1005.67")),
        ("energy", "Energy (all hours, slab 1), 11 Apr-30 Apr", D("2413.60")),
        ("tax", "GST, 1 Apr-10 Apr", D("170.96")),
        ("tax", "GST, 11 Apr-30 Apr", D("410.31")),
    ]
    assert (bill.energy, bill.taxes, bill.current_charges) == (D("3419.27"), D("581.27"), D("4000.54"))
    assert [
        (part["from"], part["to"], part["calendarDays"], part["share"], part["billingDays"], part["units"])
        for part in bill.trace["parts"]
    ] == [
        ("2024-04-01", "2024-04-10", 10, "10/30", D("10"), {"all": D("100.5667")}),
        ("2024-04-11", "2024-04-30", 20, "20/30", D("20"), {"all": D("201.1333")}),
    ]
    assert [[row["id"] for row in part["rows"]["tariffs"]] for part in bill.trace["parts"]] == [[1], [2]]


def test_a_tax_change_mid_period_splits_the_energy_too_and_a_half_cent_share_rounds_up():
    # 10.00 all month; GST 17% to 15 April, 18% from 16 April; a levy of 10.05 from 16 April.
    history = ScheduleHistory(
        tariffs=[flat("10", 1)],
        taxes=[
            Tax("GST", D("0.17"), id=1, valid_to=date(2024, 4, 16)),
            Tax("GST", D("0.18"), id=2, valid_from=date(2024, 4, 16)),
        ],
        fixed=[FixedFee("Levy", D("10.05"), id=1, valid_from=date(2024, 4, 16))],
    )

    bill = rated(history, april("300"))

    # 15 and 15 days: 150 kWh each, 1500.00 each; 17% and 18% of 1500.00. The levy for 15/30 of the
    # month: 5.025, half a cent over, rounds up to 5.03.
    assert lines(bill) == [
        ("energy", "Energy (all hours, slab 1), 1 Apr-15 Apr", D("1500.00")),
        ("energy", "Energy (all hours, slab 1), 16 Apr-30 Apr", D("1500.00")),
        ("tax", "GST, 1 Apr-15 Apr", D("255.00")),
        ("tax", "GST, 16 Apr-30 Apr", D("270.00")),
        ("fixed", "Levy, 16 Apr-30 Apr", D("5.03")),
    ]
    assert bill.current_charges == D("3530.03")


def test_two_changes_in_one_period_make_three_parts():
    # Price 10.00 -> 11.00 from 11 April; GST 17% -> 20% from 21 April.
    history = ScheduleHistory(
        tariffs=[flat("10", 1, valid_to=date(2024, 4, 11)), flat("11", 2, valid_from=date(2024, 4, 11))],
        taxes=[
            Tax("GST", D("0.17"), id=1, valid_to=date(2024, 4, 21)),
            Tax("GST", D("0.20"), id=2, valid_from=date(2024, 4, 21)),
        ],
    )

    bill = rated(history, april("300"))

    assert lines(bill) == [
        ("energy", "Energy (all hours, slab 1), 1 Apr-10 Apr", D("1000.00")),
        ("energy", "Energy (all hours, slab 1), 11 Apr-20 Apr", D("1100.00")),
        ("energy", "Energy (all hours, slab 1), 21 Apr-30 Apr", D("1100.00")),
        ("tax", "GST, 1 Apr-10 Apr", D("170.00")),
        ("tax", "GST, 11 Apr-20 Apr", D("187.00")),
        ("tax", "GST, 21 Apr-30 Apr", D("220.00")),
    ]
    assert bill.current_charges == D("3777.00")
    assert [part["share"] for part in bill.trace["parts"]] == ["10/30", "10/30", "10/30"]


def test_a_change_on_the_periods_first_day_rates_the_whole_period_on_the_new_rows_as_before():
    history = ScheduleHistory(
        tariffs=[flat("10", 1, valid_to=date(2024, 4, 1)), flat("12", 2, valid_from=date(2024, 4, 1))],
        taxes=[Tax("GST", D("0.17"), id=1)],
    )
    (stretch,) = history.stretches(None, *APRIL)

    bill = rated(history, april("300"))

    assert bill == rate_usage(april("300"), stretch.schedule)
    assert lines(bill) == [
        ("energy", "Energy (all hours, slab 1)", D("3600.00")),
        ("tax", "GST", D("612.00")),
    ]
    assert "parts" not in bill.trace


def test_a_change_on_the_periods_last_day_makes_a_part_of_that_day():
    history = ScheduleHistory(
        tariffs=[flat("10", 1, valid_to=date(2024, 4, 30)), flat("13", 2, valid_from=date(2024, 4, 30))]
    )

    bill = rated(history, april("300"))

    # 29/30 of 300 kWh = 290 kWh at 10.00; the last day's 10 kWh at 13.00.
    assert lines(bill) == [
        ("energy", "Energy (all hours, slab 1), 1 Apr-29 Apr", D("2900.00")),
        ("energy", "Energy (all hours, slab 1), 30 Apr", D("130.00")),
    ]


def test_fixed_charges_and_subsidies_in_force_in_only_some_parts_are_charged_for_their_share():
    history = ScheduleHistory(
        tariffs=[flat("10", 1, valid_to=date(2024, 4, 11)), flat("12", 2, valid_from=date(2024, 4, 11))],
        fixed=[
            FixedFee("Meter Rent", D("100"), id=1),  # all month: once, whole
            FixedFee("TV Fee", D("35"), id=2, valid_from=date(2024, 4, 11)),  # 20 of 30 days
            FixedFee("Old Levy", D("45"), id=3, valid_to=date(2024, 4, 11)),  # ends 10 April: 10 of 30
        ],
        subsidies=[
            # 2.00 per kWh imported, to 10 April only: on that part's import.
            SubsidyRule("LIFELINE", rate_per_unit=D("2"), band_low=D("0"), id=1, valid_to=date(2024, 4, 11)),
            SubsidyRule("RELIEF", percent=D("10"), band_low=D("0"), id=2),  # all month: 10% of all energy
        ],
    )

    bill = rated(history, april("200", "100"))

    # 100 kWh x 10.00 and 200 kWh x 12.00; TV Fee 35 x 20/30 = 23.333 -> 23.33; Old Levy 45 x 10/30 =
    # 15.00; LIFELINE 2.00 x 100 kWh (the first part's import); RELIEF 10% of 3400.00.
    assert lines(bill) == [
        ("energy", "Energy (all hours, slab 1), 1 Apr-10 Apr", D("1000.00")),
        ("energy", "Energy (all hours, slab 1), 11 Apr-30 Apr", D("2400.00")),
        ("fixed", "Meter Rent", D("100.00")),
        ("fixed", "Old Levy, 1 Apr-10 Apr", D("15.00")),
        ("fixed", "TV Fee, 11 Apr-30 Apr", D("23.33")),
        ("subsidy", "LIFELINE, 1 Apr-10 Apr", D("200.00")),
        ("subsidy", "RELIEF", D("340.00")),
    ]
    assert (bill.fixed, bill.subsidies, bill.current_charges) == (D("138.33"), D("540.00"), D("2998.33"))


def test_the_slab_is_chosen_once_by_the_whole_periods_average_in_the_last_parts_bands():
    # To 15 April: slab 1 below 0.5 kWh an hour at 10.00, slab 2 above at 15.00. From 16 April the
    # bands move: slab 1 below 0.4 at 11.00, slab 2 above at 16.00.
    history = ScheduleHistory(
        tariffs=[
            Tariff(D("10"), band_high=D("0.5"), slab=1, id=1, valid_to=date(2024, 4, 16)),
            Tariff(D("15"), band_low=D("0.5"), slab=2, id=2, valid_to=date(2024, 4, 16)),
            Tariff(D("11"), band_high=D("0.4"), slab=1, id=3, valid_from=date(2024, 4, 16)),
            Tariff(D("16"), band_low=D("0.4"), slab=2, id=4, valid_from=date(2024, 4, 16)),
        ]
    )

    bill = rated(history, april("324"))

    # 324 kWh / 720 h = 0.45 kWh an hour: slab 2 in the last part's bands, so the first part too is
    # charged at its slab 2 (15.00), though its own bands would have put 0.45 in slab 1.
    assert lines(bill) == [
        ("energy", "Energy (all hours, slab 2), 1 Apr-15 Apr", D("2430.00")),
        ("energy", "Energy (all hours, slab 2), 16 Apr-30 Apr", D("2592.00")),
    ]
    assert bill.trace["slabs"] == [{"bucket": "all", "averagePerHour": D("0.45"), "slab": 2, "inPart": 1}]


def test_a_part_without_the_chosen_slab_number_is_refused():
    history = ScheduleHistory(
        tariffs=[
            flat("10", 1, valid_to=date(2024, 4, 16)),
            Tariff(D("11"), band_high=D("0.4"), slab=1, id=3, valid_from=date(2024, 4, 16)),
            Tariff(D("16"), band_low=D("0.4"), slab=2, id=4, valid_from=date(2024, 4, 16)),
        ]
    )

    with pytest.raises(RatingError, match="from 2024-04-01 to 2024-04-15 have no slab 2"):
        rated(history, april("324"))


def test_each_bucket_is_shared_to_the_ten_thousandth_and_the_last_part_takes_the_remainder():
    # January, 31 days; peak 20.00 -> 22.00 and off-peak 10.00 -> 11.00 from 11 January (10/31, 21/31).
    eleventh = date(2024, 1, 11)
    history = ScheduleHistory(
        tariffs=[
            Tariff(D("20"), bucket=PEAK, id=1, valid_to=eleventh),
            Tariff(D("10"), bucket=OFF_PEAK, id=2, valid_to=eleventh),
            Tariff(D("22"), bucket=PEAK, id=3, valid_from=eleventh),
            Tariff(D("11"), bucket=OFF_PEAK, id=4, valid_from=eleventh),
        ]
    )
    usage = Usage(days=Fraction(31), units={PEAK: D("100"), OFF_PEAK: D("50")}, total_import=D("150"))

    bill = rated(history, usage, date(2024, 1, 1), date(2024, 1, 31))

    # Peak: 100 x 10/31 = 32.258064... -> 32.2581, the rest 67.7419. Off-peak: 50 x 10/31 = 16.129032...
    # -> 16.1290, the rest 33.8710. 32.2581 x 20 = 645.162; 16.1290 x 10 = 161.29; 67.7419 x 22 =
    # 1490.3218; 33.8710 x 11 = 372.581.
    assert lines(bill) == [
        ("energy", "Energy (peak, slab 1), 1 Jan-10 Jan", D("645.16")),
        ("energy", "Energy (off-peak, slab 1), 1 Jan-10 Jan", D("161.29")),
        ("energy", "Energy (peak, slab 1), 11 Jan-31 Jan", D("1490.32")),
        ("energy", "Energy (off-peak, slab 1), 11 Jan-31 Jan", D("372.58")),
    ]
    assert [(part["units"], part["totalImport"]) for part in bill.trace["parts"]] == [
        ({PEAK: D("32.2581"), OFF_PEAK: D("16.1290")}, D("48.3871")),
        ({PEAK: D("67.7419"), OFF_PEAK: D("33.8710")}, D("101.6129")),
    ]
    assert bill.energy == D("2669.35")


def test_each_parts_minimums_are_scaled_by_its_own_days():
    # Minimums of 60 kWh and 300.00 per 30 days at both prices: 20 kWh and 100.00 for 10 days,
    # 40 kWh and 200.00 for 20.
    history = ScheduleHistory(
        tariffs=[
            Tariff(D("10"), min_units=D("60"), min_amount=D("300"), id=1, valid_to=date(2024, 4, 11)),
            Tariff(D("12"), min_units=D("60"), min_amount=D("300"), id=2, valid_from=date(2024, 4, 11)),
        ]
    )

    low = rated(history, april("15"))
    high = rated(history, april("90"))

    # 5 and 10 kWh: under each part's minimum units, so each part's minimum amount.
    assert [line.amount for line in low.lines] == [D("100.00"), D("200.00")]
    # 30 kWh: 100.00 + (30 - 20) x 10.00; 60 kWh: 200.00 + (60 - 40) x 12.00.
    assert [line.amount for line in high.lines] == [D("200.00"), D("440.00")]


@hypothesis_settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(schedules())
def test_a_period_with_no_change_inside_is_rated_exactly_as_before(schedule):
    # Rows changing before the period, after it, or for another connection type split nothing.
    history = ScheduleHistory(
        tariffs=[
            *schedule.tariffs,
            Tariff(D("99"), id=90, valid_to=APRIL[0]),
            Tariff(D("98"), id=91, connection_type=5, valid_from=date(2024, 4, 11)),
        ],
        taxes=[*schedule.taxes, Tax("Old", D("0.5"), id=90, valid_to=date(2024, 3, 1))],
        fixed=[*schedule.fixed, FixedFee("Later", D("7"), id=90, valid_from=date(2024, 5, 1))],
        subsidies=schedule.subsidies,
    )
    usage = april("312.3456", "98.7654")

    assert rated(history, usage, income=D("20000")) == rate_usage(usage, schedule, income=D("20000"))


# --- end to end ----------------------------------------------------------------------------------


class AuthorityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Authority

    code = factory.Sequence(lambda n: f"AUTH{n}")
    name = factory.Sequence(lambda n: f"Authority {n}")


@pytest.fixture
def price_change(db):
    """20.00 per kWh to 10 January 2024, 30.00 from 11 January; GST 10% throughout. A connection read
    31 December and 31 January at 09:00, 310 kWh between."""
    provider = ProviderFactory()
    FlatTariffFactory(provider=provider, rate=D("20.00"), valid_to=date(2024, 1, 11))
    FlatTariffFactory(provider=provider, rate=D("30.00"), valid_from=date(2024, 1, 11), code="FLAT-2024")
    TaxRule.objects.create(
        provider=provider,
        name="GST",
        authority=AuthorityFactory(provider=provider),
        rate=D("0.10"),
        valid_from=date(2020, 1, 1),
    )
    connection = ConnectionFactory(customer=CustomerFactory(provider=provider))
    ReadingFactory(
        connection=connection, taken_at=datetime(2023, 12, 31, 9, tzinfo=ZONE), import_peak=D("1000")
    )
    ReadingFactory(
        connection=connection, taken_at=datetime(2024, 1, 31, 9, tzinfo=ZONE), import_peak=D("1310")
    )
    return connection


# 1 to 10 January: 10/31 of 310 kWh = 100 kWh at 20.00; 11 to 31 January: 210 kWh at 30.00.
EXPECTED_LINES = [
    ("energy", "Energy (all hours, slab 1), 1 Jan-10 Jan", D("2000.00")),
    ("energy", "Energy (all hours, slab 1), 11 Jan-31 Jan", D("6300.00")),
    ("tax", "GST, 1 Jan-10 Jan", D("200.00")),
    ("tax", "GST, 11 Jan-31 Jan", D("630.00")),
]


@pytest.mark.django_db
def test_a_bill_issued_from_readings_is_prorated(price_change):
    creator = UserFactory(provider=price_change.provider, roles=[Role.INVOICE_CREATOR])

    invoice = invoice_issue(connection=price_change, period=date(2024, 1, 1), created_by=creator)

    assert [
        (line.kind, line.label, line.amount) for line in invoice.lines.order_by("position")
    ] == EXPECTED_LINES
    assert (invoice.energy_charge, invoice.tax_total, invoice.current_charges) == (
        D("8300.00"),
        D("830.00"),
        D("9130.00"),
    )
    assert [(part["from"], part["to"], part["share"]) for part in invoice.trace["parts"]] == [
        ("2024-01-01", "2024-01-10", "10/31"),
        ("2024-01-11", "2024-01-31", "21/31"),
    ]


@pytest.mark.django_db
def test_a_bill_of_typed_kwh_has_no_period_to_split_and_is_rated_on_its_issue_dates_prices(price_change):
    creator = UserFactory(provider=price_change.provider, roles=[Role.INVOICE_CREATOR])

    invoice = invoice_issue(
        connection=price_change,
        period=date(2024, 1, 1),
        created_by=creator,
        kwh=D("310"),
        issue_date=date(2024, 1, 10),
    )

    # The price of 10 January, 20.00, for all 310 kWh; GST 10%.
    assert [(line.kind, line.label, line.amount) for line in invoice.lines.order_by("position")] == [
        ("energy", "Energy (all hours, slab 1)", D("6200.00")),
        ("tax", "GST", D("620.00")),
    ]


@pytest.mark.django_db
def test_the_billing_run_prorates_and_the_bill_page_shows_each_part(price_change, client):
    run, _ = billing_run_start(provider=price_change.provider, period=date(2024, 1, 1), chunk_size=10)
    for chunk_id in pending_chunks(run):
        billing_run_chunk_bill(chunk_id=chunk_id)
    invoice = Invoice.objects.get(connection=price_change)
    staff = UserFactory(provider=price_change.provider, roles=[Role.SUPER_CREATOR])
    client.force_login(staff)
    session = client.session
    session[SESSION_ROLE_KEY] = Role.SUPER_CREATOR
    session.save()

    page = client.get(f"/bills/{invoice.pk}").content.decode()

    assert [
        (line.kind, line.label, line.amount) for line in invoice.lines.order_by("position")
    ] == EXPECTED_LINES
    for label in ("Energy (all hours, slab 1), 1 Jan-10 Jan", "GST, 11 Jan-31 Jan"):
        assert label in page
    assert "A price, tax, fixed charge or subsidy changed within this period" in page
    assert "1 Jan 2024 to 10 Jan 2024: 10 calendar days (share 10/31)" in page
    assert "GST, 11 Jan-31 Jan: 10% of the energy charges of 6,300.00" in page


@pytest.mark.django_db
def test_the_bills_pdf_prints_each_parts_lines_and_the_split(price_change):
    creator = UserFactory(provider=price_change.provider, roles=[Role.INVOICE_CREATOR])
    invoice = invoice_issue(connection=price_change, period=date(2024, 1, 1), created_by=creator)

    text = " ".join(text_of(invoice_pdf(invoice, [])).split())

    for label in ("Energy (all hours, slab 1), 1 Jan-10 Jan", "GST, 11 Jan-31 Jan"):
        assert label in text
    assert "11 Jan 2024 to 31 Jan 2024: 21 calendar days (share 21/31)" in text
