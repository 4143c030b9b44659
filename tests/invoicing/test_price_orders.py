"""Retroactive price orders: entered as a draft (refused where an ordinary change is meant, or where it
would clash with the schedule), listing the bills they affect, and confirmed: the prices change from the
order's past first day and a billing run of its own credits those bills and issues them again.

The connection reads 300 kWh a month on the 28th (December 2023 to March 2024) at a flat 32.50: each
bill is 9750.00. The order charges 30.00 from 1 February 2024: January's bill (29 December to
28 January) keeps its price; February's period (29 January to 28 February, 31 days) is split, 3 days at
32.50 and 28 at 30.00; March's (29 February to 28 March) is all at 30.00."""

import re
from datetime import date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from accounts.roles import Role
from accounts.sessions import SESSION_ROLE_KEY
from config.errors import Conflict
from invoicing.models import BillingRunStatus, CreditNote, Invoice, InvoiceStatus, ProblemKind
from invoicing.selectors import providers_without_run
from invoicing.services import (
    billing_run_chunk_bill,
    credit_balance_of,
    invoice_issue,
    payment_post,
    price_order_affected_bills,
    price_order_confirm,
)
from providers.models import Bucket, PriceOrder, PriceOrderStatus, TariffRow
from providers.orders import PriceOrderRefused, price_order_enter
from providers.services import ChangeNotAllowed, ScheduleInvalid, TariffSpec, tariff_change
from tests.factories import FlatTariffFactory, UserFactory, billable_connection
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db

JANUARY, FEBRUARY, MARCH = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)
ORDER_FROM = date(2024, 2, 1)
TODAY = date(2024, 4, 20)
# The order's and the new bills' dates, and each credit note's, read today.
FROZEN = time_machine.travel(datetime(2024, 4, 20, 12, tzinfo=ZoneInfo("Asia/Karachi")), tick=False)
# February at 3 days of 32.50 and 28 of 30.00: 300 kWh shared 3/31 (29.0323 kWh) and the rest.
FEBRUARY_AT_ORDER = D("943.55") + D("8129.03")
MARCH_AT_ORDER = D("9000.00")


@pytest.fixture(autouse=True)
def _frozen():
    with FROZEN:
        yield


@pytest.fixture
def administrator(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.ADMIN], designation="Tariff Officer")


@pytest.fixture
def bills(connection, creator):
    """January to March 2024, issued at 32.50 before the order came."""
    return [
        invoice_issue(connection=connection, period=month, created_by=creator)
        for month in (JANUARY, FEBRUARY, MARCH)
    ]


def enter(provider, user, *, rate="30.00", valid_from=ORDER_FROM, reference="NEPRA/TRF-1/2024", **fields):
    return price_order_enter(
        provider=provider,
        reference=reference,
        valid_from=valid_from,
        connection_type=None,
        rows=[TariffSpec(rate=D(rate), description="Flat price per kWh")],
        entered_by=user,
        **fields,
    )


def rebill(order, user, chunk_size=1000):
    run = price_order_confirm(order=order, confirmed_by=user, chunk_size=chunk_size)
    for chunk_id in run.chunks.values_list("pk", flat=True):
        assert billing_run_chunk_bill(chunk_id=chunk_id, worker="test") is True
    run.refresh_from_db()
    return run


def standing(connection) -> list[tuple]:
    return list(
        Invoice.objects.filter(connection=connection)
        .exclude(status=InvoiceStatus.CANCELLED)
        .order_by("period")
        .values_list("period", "current_charges", "issue_date")
    )


# --- entering an order ------------------------------------------------------------------------------


def test_an_order_is_entered_as_a_draft_that_changes_no_price(flat_provider, administrator):
    order = enter(flat_provider, administrator, description="Tariff determination for FY 2023-24")

    assert (order.status, order.reference, order.valid_from, order.entered_by) == (
        PriceOrderStatus.DRAFT,
        "NEPRA/TRF-1/2024",
        ORDER_FROM,
        administrator,
    )
    assert order.rows[0]["rate"] == "30.00"
    assert list(TariffRow.objects.filter(provider=flat_provider).values_list("rate", "valid_to")) == [
        (D("32.50"), None)
    ]


@pytest.mark.parametrize("valid_from", [TODAY, date(2024, 5, 1)])
def test_an_order_from_today_or_later_is_refused_as_an_ordinary_change(
    flat_provider, administrator, valid_from
):
    with pytest.raises(PriceOrderRefused, match="change the prices in the ordinary way"):
        enter(flat_provider, administrator, valid_from=valid_from)


def test_an_order_with_a_reference_already_entered_is_refused(flat_provider, administrator):
    enter(flat_provider, administrator)

    with pytest.raises(Conflict, match="NEPRA/TRF-1/2024 is already entered"):
        enter(flat_provider, administrator, rate="29.00")


def test_an_order_before_a_change_already_made_is_refused(flat_provider, administrator):
    tariff_change(
        provider=flat_provider,
        connection_type=None,
        valid_from=date(2024, 3, 1),
        rows=[TariffSpec(rate=D("31.00"))],
        changed_by=administrator,
        today=date(2024, 3, 1),
    )

    with pytest.raises(ChangeNotAllowed, match="A change from 2024-03-01 is already scheduled"):
        enter(flat_provider, administrator)


def test_an_order_whose_rows_leave_a_gap_in_the_bands_is_refused(flat_provider, administrator):
    with pytest.raises(ScheduleInvalid, match="the lowest band must start at 0"):
        price_order_enter(
            provider=flat_provider,
            reference="NEPRA/TRF-2/2024",
            valid_from=ORDER_FROM,
            connection_type=None,
            rows=[TariffSpec(rate=D("30.00"), band_low=D("1"))],
            entered_by=administrator,
        )
    assert not PriceOrder.objects.exists()


# --- the bills it affects ---------------------------------------------------------------------------


def test_the_bills_affected_are_those_whose_period_reaches_the_orders_first_day(
    flat_provider, administrator, bills
):
    order = enter(flat_provider, administrator)

    assert list(price_order_affected_bills(order=order).order_by("period").values_list("pk", flat=True)) == [
        bills[1].pk,
        bills[2].pk,
    ]


@pytest.fixture
def their_bills(other_provider):
    """Another provider's January and February bills, on the same flat price."""
    FlatTariffFactory(provider=other_provider, rate=D("32.50"))
    theirs = billable_connection(other_provider, months=2)
    clerk = UserFactory(provider=other_provider, roles=[Role.INVOICE_CREATOR])
    return [invoice_issue(connection=theirs, period=month, created_by=clerk) for month in (JANUARY, FEBRUARY)]


def test_another_providers_bills_are_neither_affected_nor_re_billed(
    flat_provider, administrator, bills, their_bills
):
    order = enter(flat_provider, administrator)
    assert set(price_order_affected_bills(order=order).values_list("provider_id", flat=True)) == {
        flat_provider.pk
    }

    rebill(order, administrator)

    assert [
        (bill.status, bill.current_charges)
        for bill in Invoice.objects.filter(provider=their_bills[0].provider_id)
    ] == [
        (InvoiceStatus.PENDING, D("9750.00")),
        (InvoiceStatus.PENDING, D("9750.00")),
    ]


# --- confirming: the prices change and the bills are issued again -------------------------------------


def test_confirming_closes_the_old_price_on_the_orders_day_and_opens_the_orders_own(
    flat_provider, administrator
):
    order = enter(flat_provider, administrator)

    run = price_order_confirm(order=order, confirmed_by=administrator)

    order.refresh_from_db()
    assert (order.status, order.confirmed_by) == (PriceOrderStatus.CONFIRMED, administrator)
    rows = TariffRow.objects.filter(provider=flat_provider).order_by("valid_from")
    assert list(rows.values_list("rate", "valid_from", "valid_to", "price_order", "closed_by_order")) == [
        (D("32.50"), date(2020, 1, 1), ORDER_FROM, None, order.pk),
        (D("30.00"), ORDER_FROM, None, order.pk, None),
    ]
    assert (run.price_order, run.status, run.total) == (order, BillingRunStatus.COMPLETED, 0)


def test_a_confirmed_order_is_not_confirmed_again(flat_provider, administrator):
    order = enter(flat_provider, administrator)
    price_order_confirm(order=order, confirmed_by=administrator)

    with pytest.raises(Conflict, match="was confirmed on"):
        price_order_confirm(order=order, confirmed_by=administrator)


def test_an_order_is_not_confirmed_once_a_later_change_was_made_after_it_was_entered(
    flat_provider, administrator, bills
):
    order = enter(flat_provider, administrator)
    tariff_change(
        provider=flat_provider,
        connection_type=None,
        valid_from=date(2024, 5, 1),
        rows=[TariffSpec(rate=D("31.00"))],
        changed_by=administrator,
    )

    with pytest.raises(ChangeNotAllowed, match="A change from 2024-05-01 is already scheduled"):
        price_order_confirm(order=order, confirmed_by=administrator)

    order.refresh_from_db()
    assert order.status == PriceOrderStatus.DRAFT
    assert not Invoice.objects.filter(status=InvoiceStatus.CANCELLED).exists()


def test_the_run_credits_each_affected_bill_and_issues_it_again_at_the_orders_price(
    flat_provider, administrator, connection, bills
):
    january, february, march = bills
    order = enter(flat_provider, administrator)

    run = rebill(order, administrator)

    assert (run.status, run.total, run.done, run.issued, run.failed) == (
        BillingRunStatus.COMPLETED,
        1,
        1,
        2,
        0,
    )
    assert run.credited_amount == D("19500.00")
    assert run.billed_amount == FEBRUARY_AT_ORDER + MARCH_AT_ORDER
    assert standing(connection) == [
        (JANUARY, D("9750.00"), date(2024, 1, 31)),
        (FEBRUARY, FEBRUARY_AT_ORDER, TODAY),
        (MARCH, MARCH_AT_ORDER, TODAY),
    ]
    notes = CreditNote.objects.order_by("number")
    assert list(notes.values_list("invoice", "amount", "applied", "to_balance")) == [
        (march.pk, D("9750.00"), D("9750.00"), D("0.00")),  # newest first
        (february.pk, D("9750.00"), D("9750.00"), D("0.00")),
    ]
    assert notes[0].reason == "Re-billed under price order NEPRA/TRF-1/2024 (new rates from 01 Feb 2024)"
    new_february = Invoice.objects.get(replaces=february)
    new_march = Invoice.objects.get(replaces=march)
    assert (new_february.billing_run, new_february.created_by) == (run, administrator)
    assert (new_february.period_start, new_february.period_end) == (
        february.period_start,
        february.period_end,
    )
    assert new_march.arrears == D("9750.00") + FEBRUARY_AT_ORDER  # January and the new February owed
    assert set(new_march.lines.values_list("row_id", flat=True)) == set(
        order.opened_rows.values_list("pk", flat=True)
    )
    january.refresh_from_db()
    assert january.status == InvoiceStatus.PENDING
    assert_ledger_holds(connection)


def test_a_paid_bill_credited_goes_to_the_credit_balance_which_pays_the_new_bill(
    flat_provider, administrator, super_creator, connection, bills, cash
):
    payment_post(invoice=bills[2], amount=D("29250.00"), method=cash, received_by=super_creator)
    order = enter(flat_provider, administrator)

    rebill(order, administrator)

    new_february = Invoice.objects.get(replaces=bills[1])
    new_march = Invoice.objects.get(replaces=bills[2])
    # 19500.00 paid on February and March comes back as credit and pays the new bills at once.
    assert (new_february.credit_applied, new_february.balance, new_february.status) == (
        FEBRUARY_AT_ORDER,
        D("0.00"),
        InvoiceStatus.PAID,
    )
    assert (new_march.credit_applied, new_march.balance) == (MARCH_AT_ORDER, D("0.00"))
    assert credit_balance_of(connection.customer) == D("19500.00") - FEBRUARY_AT_ORDER - MARCH_AT_ORDER
    assert_ledger_holds(connection)


def test_a_bill_of_typed_kwh_issued_after_the_orders_day_keeps_its_kwh_at_the_new_price(
    flat_provider, administrator, creator
):
    connection = billable_connection(flat_provider)
    typed = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator, kwh=D("120"))
    order = enter(flat_provider, administrator)

    rebill(order, administrator)

    new = Invoice.objects.get(replaces=typed)
    assert (new.kwh_consumed, new.current_charges, new.source) == (D("120.0000"), D("3600.00"), "kwh")
    assert_ledger_holds(connection)


def test_a_connection_that_cannot_be_re_billed_is_rolled_back_alone_and_recorded(
    flat_provider, administrator, creator, connection, bills
):
    """An order moving to peak and off-peak prices cannot re-rate a bill of all-hours kWh typed in."""
    typed_connection = billable_connection(flat_provider)
    typed = invoice_issue(connection=typed_connection, period=FEBRUARY, created_by=creator, kwh=D("120"))
    order = price_order_enter(
        provider=flat_provider,
        reference="NEPRA/TOU-1/2024",
        valid_from=ORDER_FROM,
        connection_type=None,
        rows=[
            TariffSpec(rate=D("40.00"), bucket=Bucket.PEAK),
            TariffSpec(rate=D("25.00"), bucket=Bucket.OFF_PEAK),
        ],
        entered_by=administrator,
    )

    run = rebill(order, administrator, chunk_size=1)

    assert (run.total, run.done, run.issued, run.failed) == (2, 2, 2, 1)
    assert list(run.problems.values_list("connection", "kind")) == [(typed_connection.pk, ProblemKind.FAILED)]
    assert "give peakKwh and offPeakKwh" in run.problems.get().reason
    typed.refresh_from_db()
    assert (typed.status, typed.credit_notes.count()) == (InvoiceStatus.PENDING, 0)
    # March at 100 kWh peak x 40.00 + 200 kWh off-peak x 25.00.
    assert Invoice.objects.get(replaces=bills[2]).current_charges == D("9000.00")
    assert_ledger_holds(connection, typed_connection)


def test_a_chunk_done_again_re_bills_nothing_twice(flat_provider, administrator, connection, bills):
    order = enter(flat_provider, administrator)
    run = rebill(order, administrator)
    chunk = run.chunks.get()

    assert billing_run_chunk_bill(chunk_id=chunk.pk) is False  # done: the chunk's lock finds nothing
    type(chunk).objects.filter(pk=chunk.pk).update(done=False)  # and were it not marked done
    assert billing_run_chunk_bill(chunk_id=chunk.pk) is True

    assert price_order_affected_bills(order=order).count() == 0
    assert Invoice.objects.filter(connection=connection).count() == 5
    assert CreditNote.objects.count() == 2
    run.refresh_from_db()
    assert (run.issued, run.credited_amount) == (2, D("19500.00"))
    assert_ledger_holds(connection)


def test_a_price_order_run_does_not_count_as_the_months_billing_run(flat_provider, administrator, bills):
    order = enter(flat_provider, administrator)
    rebill(order, administrator)

    assert flat_provider in providers_without_run(period=FEBRUARY)


def test_the_runs_progress_page_names_the_order_and_what_was_credited(
    flat_provider, administrator, super_creator, bills
):
    run = rebill(enter(flat_provider, administrator), administrator)
    client = Client()
    client.force_login(super_creator)
    session = client.session
    session[SESSION_ROLE_KEY] = Role.SUPER_CREATOR
    session.save()

    page = client.get(f"/billing-runs/{run.pk}").content.decode()

    assert "Re-billing under price order NEPRA/TRF-1/2024" in page
    assert re.search(r'data-testid="run-credited">[^<]*19,?500\.00', page)
    assert "re-billing under price order NEPRA/TRF-1/2024" in client.get("/billing-runs").content.decode()


def test_the_run_in_the_api_names_the_order_and_what_was_credited(
    flat_provider, administrator, super_creator, bills, as_role
):
    run = rebill(enter(flat_provider, administrator), administrator)

    body = as_role(super_creator, Role.SUPER_CREATOR).get(f"/api/billing-runs/{run.pk}").json()

    assert (body["priceOrder"], body["creditedAmount"], body["status"]) == (
        "NEPRA/TRF-1/2024",
        "19500.00",
        "completed",
    )


def test_an_order_for_a_type_priced_on_the_all_types_rate_re_bills_that_type_alone(
    flat_provider, administrator, creator
):
    ordered, other = (
        billable_connection(flat_provider, months=2),
        billable_connection(flat_provider, months=2),
    )
    for connection in (ordered, other):
        for month in (JANUARY, FEBRUARY):
            invoice_issue(connection=connection, period=month, created_by=creator)
    order = price_order_enter(
        provider=flat_provider,
        reference="NEPRA/TRF-3/2024",
        valid_from=ORDER_FROM,
        connection_type=ordered.connection_type,
        rows=[TariffSpec(rate=D("30.00"))],
        entered_by=administrator,
    )

    run = rebill(order, administrator)

    assert (run.total, run.issued) == (1, 1)
    assert [amount for _, amount, _ in standing(ordered)] == [D("9750.00"), FEBRUARY_AT_ORDER]
    assert [amount for _, amount, _ in standing(other)] == [D("9750.00"), D("9750.00")]
    assert TariffRow.objects.get(code="FLAT").valid_to is None  # still the other types' rate
    assert_ledger_holds(ordered, other)
