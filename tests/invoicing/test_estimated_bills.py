"""Estimated bills end to end: the billing run and a clerk estimate a month without a reading (when the
provider estimates), a connection with no history is skipped with the reason, the next actual reading
trues the estimates up (a credit when they were too high, carried to the next bill), and the API, the
pages and the PDF say a bill is estimated. The ledger holds throughout."""

from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from pypdf import PdfReader

from accounts.roles import Role
from accounts.sessions import SESSION_ROLE_KEY
from billing.rating import Reading
from billing.selectors import schedule_in_force
from invoicing.models import Invoice, InvoiceStatus, ProblemKind
from invoicing.pdf import invoice_pdf
from invoicing.selectors import bill_get_for, pending_chunks
from invoicing.services import (
    InvoiceRefused,
    billing_run_chunk_bill,
    billing_run_start,
    invoice_issue,
    invoices_mark_overdue,
)
from providers.importing import price_schedule_import
from providers.models import ConnectionType
from tests.billing.test_rating_oracle import oracle
from tests.factories import ConnectionFactory, CustomerFactory, ReadingFactory
from tests.invoicing.ledger import assert_ledger_holds
from tests.invoicing.test_pdf import TIME_OF_USE_SCHEDULE

pytestmark = pytest.mark.django_db
D = Decimal
ZONE = ZoneInfo(settings.TIME_ZONE)
JANUARY, FEBRUARY, MARCH = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)


def at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, tzinfo=ZONE)


def read(connection, when: datetime, peak: str, off_peak: str) -> None:
    ReadingFactory(connection=connection, taken_at=when, import_peak=D(peak), import_off_peak=D(off_peak))


def with_history(provider, **fields):
    """Read on the 28th from September to December 2023, 100 kWh peak and 200 off-peak a month."""
    connection = ConnectionFactory(customer=CustomerFactory(provider=provider), provider=provider, **fields)
    for step, month in enumerate((9, 10, 11, 12)):
        read(connection, at(2023, month, 28), str(100 * step), str(200 * step))
    return connection


def run(provider, period: date):
    started, _ = billing_run_start(provider=provider, period=period, chunk_size=10)
    for chunk_id in pending_chunks(started):
        billing_run_chunk_bill(chunk_id=chunk_id)
    started.refresh_from_db()
    return started


def test_the_billing_run_estimates_a_month_without_a_reading_and_skips_a_connection_without_history(
    flat_provider,
):
    estimated = with_history(flat_provider)
    new = ConnectionFactory(customer=CustomerFactory(provider=flat_provider))

    january = run(flat_provider, JANUARY)

    bill = Invoice.objects.get(connection=estimated)
    # 28 Dec 09:00 to 1 Feb 00:00 is 34.625 days; the last three periods: 300 peak and 600 off-peak
    # kWh in 91 days. 300 / 91 x 34.625 = 114.1484, 600 / 91 x 34.625 = 228.2967 (to 0.0001 kWh).
    assert (bill.estimated, bill.period_start, bill.period_end) == (True, at(2023, 12, 28), at(2024, 2, 1, 0))
    assert (bill.peak_units, bill.off_peak_units, bill.end_import_peak, bill.end_import_off_peak) == (
        D("114.1484"),
        D("228.2967"),
        D("414.1484"),
        D("828.2967"),
    )
    assert bill.current_charges == D("11129.47")  # 342.4451 kWh x 32.50
    assert bill.trace["estimate"]["basis"] == "the last three actual periods"
    assert (january.issued, january.skipped) == (1, 1)
    [problem] = january.problems.all()
    assert (problem.connection, problem.kind, problem.reason) == (
        new,
        ProblemKind.SKIPPED,
        f"Connection {new.number} has no reading in January 2024 and no history to estimate one from (no "
        "actual period between two readings before it); it is billed once a reading comes.",
    )


def test_the_next_actual_reading_trues_the_estimate_up(flat_provider):
    connection = with_history(flat_provider)
    run(flat_provider, JANUARY)
    read(connection, at(2024, 2, 28), "700", "1300")  # 1100 kWh since 28 December

    run(flat_provider, FEBRUARY)

    estimate, true_up = Invoice.objects.filter(connection=connection).order_by("period")
    # The whole span, 28 December to 28 February, as one period: 1100 x 32.50; less the estimate.
    assert (true_up.estimated, true_up.energy_charge, true_up.estimated_billed) == (
        False,
        D("35750.00"),
        D("11129.47"),
    )
    assert true_up.current_charges == D("24620.53")
    assert estimate.current_charges + true_up.current_charges == D("35750.00")
    assert (true_up.period_start, true_up.period_end) == (estimate.period_end, at(2024, 2, 28))
    assert true_up.kwh_consumed == D("757.5549")  # 1100 less the 342.4451 estimated
    assert [(line.kind, line.amount) for line in true_up.lines.order_by("position")] == [
        ("energy", D("35750.00")),
        ("estimate", D("11129.47")),
    ]
    assert true_up.trace["span"]["from"] == at(2023, 12, 28).isoformat()
    assert_ledger_holds(connection)


def test_an_estimate_too_high_gives_a_zero_bill_and_a_credit_on_the_next(
    flat_provider, creator, time_machine
):
    connection = with_history(flat_provider)
    run(flat_provider, JANUARY)
    read(connection, at(2024, 2, 28), "350", "650")  # only 100 kWh since 28 December
    read(connection, at(2024, 3, 28), "450", "850")  # 300 kWh in March

    february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)
    time_machine.move_to(datetime(2024, 4, 5, 12, tzinfo=ZONE), tick=False)
    invoices_mark_overdue(provider=flat_provider)  # the zero bill is paid: never overdue, no surcharge
    march = invoice_issue(connection=connection, period=MARCH, created_by=creator)

    february.refresh_from_db()
    # 100 x 32.50 = 3250.00 less the 11129.47 estimated: 7879.47 below zero.
    assert (february.current_charges, february.credit_carried, february.status) == (
        D("0.00"),
        D("7879.47"),
        InvoiceStatus.PAID,
    )
    # No late surcharge on a zero bill: after the due date it still asks only for the arrears.
    assert (february.late_surcharge, february.payable_after_due) == (D("0.00"), february.arrears)
    assert not february.adjustments.exists()
    assert (march.credit_brought, march.current_charges, march.credit_carried) == (
        D("7879.47"),
        D("1870.53"),  # 9750.00 - 7879.47
        D("0.00"),
    )
    assert [line.kind for line in march.lines.order_by("position")] == ["energy", "credit"]
    assert_ledger_holds(connection)


def test_each_bill_carries_its_own_months_fixed_charges_and_the_usage_lines_add_up(provider):
    price_schedule_import(provider=provider, data=TIME_OF_USE_SCHEDULE)
    residential = ConnectionType.objects.get(provider=provider, code="1")
    connection = with_history(provider, connection_type=residential)
    run(provider, JANUARY)
    run(provider, FEBRUARY)  # still no reading: a second estimate
    read(connection, at(2024, 3, 27, 18), "1234.5678", "2345.6789")

    run(provider, MARCH)

    first, second, true_up = Invoice.objects.filter(connection=connection).order_by("period")
    assert (first.estimated, second.estimated, true_up.estimated) == (True, True, False)
    assert [bill.fixed_total for bill in (first, second, true_up)] == [D("160.00")] * 3
    schedule = schedule_in_force(provider=provider, day=date(2024, 3, 31)).for_type(residential.pk)
    closing = Reading(at(2024, 3, 27, 18), D("1234.5678"), D("2345.6789"))
    whole = oracle(Reading(at(2023, 12, 28), D(300), D(600)), closing, schedule, None)
    usage = [bill.energy_charge + bill.tax_total - bill.subsidy_total for bill in (first, second)]
    true_up_usage = (
        true_up.energy_charge + true_up.tax_total - true_up.subsidy_total - true_up.estimated_billed
    )
    assert Fraction(sum(usage) + true_up_usage) == sum(whole["energy"]) + sum(whole["taxes"]) - sum(
        whole["subsidies"]
    )
    assert true_up.estimated_billed == sum(usage)
    assert_ledger_holds(connection)


def test_a_clerk_issuing_a_month_without_a_reading_gets_an_estimate(flat_provider, creator):
    connection = with_history(flat_provider)

    bill = invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    assert (bill.estimated, bill.current_charges) == (True, D("11129.47"))


def test_a_provider_that_does_not_estimate_leaves_the_month_unbilled(flat_provider, creator):
    flat_provider.estimate_missing_readings = False
    flat_provider.save()
    connection = with_history(flat_provider)

    with pytest.raises(InvoiceRefused, match="has no reading in January 2024 after 28 December 2023 09:00"):
        invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    january = run(flat_provider, JANUARY)

    assert (january.issued, january.skipped) == (0, 1)


def test_a_month_not_over_is_not_estimated(flat_provider, creator, time_machine):
    time_machine.move_to(datetime(2024, 1, 20, 12, tzinfo=ZONE), tick=False)
    connection = with_history(flat_provider)

    with pytest.raises(InvoiceRefused, match="A month is estimated only once it is over"):
        invoice_issue(connection=connection, period=JANUARY, created_by=creator)


def test_the_api_the_pages_and_the_pdf_mark_an_estimated_bill(flat_provider, creator, as_role, client):
    connection = with_history(flat_provider)
    bill = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    api = as_role(creator, Role.INVOICE_CREATOR)

    detail = api.get(f"/api/invoices/{bill.pk}").json()
    listed = api.get("/api/invoices/my-created").json()
    client.force_login(creator)
    session = client.session
    session[SESSION_ROLE_KEY] = Role.INVOICE_CREATOR
    session.save()
    page = client.get(f"/bills/{bill.pk}").content.decode()
    creator.active_role = Role.INVOICE_CREATOR
    found = bill_get_for(user=creator, invoice_id=bill.pk)
    pdf = "\n".join(
        page.extract_text() for page in PdfReader(BytesIO(invoice_pdf(found, found.history))).pages
    )

    assert (detail["estimated"], detail["periodEnd"]) == (True, "2024-02-01T00:00:00+05:00")
    assert [row["estimated"] for row in listed["results"]] == [True]
    assert 'data-testid="estimated"' in page and "This bill is estimated" in page
    assert "ESTIMATED BILL" in pdf
    assert "This bill is estimated" in pdf
