"""Meter exchanges: the old meter's final reading and the new meter's first, at one moment, recorded by
`meter_exchange_record` (API, page, admin), checked as readings are; a month across an exchange is billed
on both meters' parts, per register (DESIGN.md "Meter exchange"), and its bill shows both meters."""

from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader

from accounts.roles import Role
from accounts.sessions import SESSION_ROLE_KEY
from auditing.models import AuditLog
from billing.models import ConnectionStatus, MeterExchange, MeterReading, ReadingSource
from billing.rating import MeterChange, Reading, rate_usage, usage_between
from billing.services import (
    ExchangeDuplicate,
    ExchangeRefused,
    ReadingRefused,
    meter_exchange_record,
    reading_record,
    readings_upload,
)
from invoicing.models import Invoice, ProblemKind
from invoicing.pdf import invoice_pdf
from invoicing.selectors import bill_get_for, pending_chunks
from invoicing.services import InvoiceRefused, billing_run_chunk_bill, billing_run_start, invoice_issue
from providers.models import Bucket
from tests.billing.test_rating_oracle import EXACT, oracle, schedules
from tests.factories import (
    ConnectionFactory,
    CustomerFactory,
    FlatTariffFactory,
    ProviderFactory,
    ReadingFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
D = Decimal
ZONE = ZoneInfo(settings.TIME_ZONE)
NOW = datetime(2024, 2, 10, 12, tzinfo=ZONE)


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2024 if month else 2023, month or 12, day, hour, tzinfo=ZONE)


def registers(peak: str, off_peak: str, export_peak: str = "0", export_off_peak: str = "0") -> dict:
    return {
        "import_peak": D(peak),
        "import_off_peak": D(off_peak),
        "export_peak": D(export_peak),
        "export_off_peak": D(export_off_peak),
    }


@pytest.fixture
def tou_provider(db):
    """Peak hours at 40.00 per kWh, off-peak hours at 25.00: a bill is 40 x net peak + 25 x net off-peak."""
    provider = ProviderFactory()
    FlatTariffFactory(provider=provider, bucket=Bucket.PEAK, rate=D("40.00"), code="PEAK")
    FlatTariffFactory(provider=provider, bucket=Bucket.OFF_PEAK, rate=D("25.00"), code="OFFPEAK")
    return provider


@pytest.fixture
def clerk(tou_provider):
    return UserFactory(provider=tou_provider, roles=[Role.INVOICE_CREATOR])


@pytest.fixture
def connection(tou_provider):
    """Meter OLD-1, read on 28 December: 1000 / 2000 imported, 10 / 5 exported."""
    connection = ConnectionFactory(
        customer=CustomerFactory(provider=tou_provider), meter_number="OLD-1", meter_type="Static"
    )
    reading_record(
        connection=connection, taken_at=at(0, 28), registers=registers("1000", "2000", "10", "5"), now=NOW
    )
    return connection


def exchange(
    connection, when=None, old=("1080", "2150", "12", "9"), new=("5", "3"), number="NEW-2", **options
):
    return meter_exchange_record(
        connection=connection,
        at=when or at(1, 15, 14),
        old_final=registers(*old),
        new_first=registers(*new),
        new_meter_number=number,
        reason=options.pop("reason", "Display burnt out"),
        recorded_by=options.pop("recorded_by", None),
        now=NOW,
        **options,
    )


# --- recording -----------------------------------------------------------------------------------


def test_an_exchange_records_both_meters_and_the_connection_takes_the_new_one(connection, clerk):
    recorded = exchange(connection, recorded_by=clerk, new_meter_type="Net meter")

    connection.refresh_from_db()
    assert (recorded.old_meter_number, recorded.new_meter_number, recorded.new_meter_type) == (
        "OLD-1",
        "NEW-2",
        "Net meter",
    )
    assert (recorded.final_import_peak, recorded.final_export_off_peak, recorded.first_import_peak) == (
        D("1080"),
        D("9"),
        D("5"),
    )
    first = recorded.first_reading
    assert (first.taken_at, first.import_peak, first.import_off_peak, first.meter_replaced, first.source) == (
        at(1, 15, 14),
        D("5"),
        D("3"),
        True,
        ReadingSource.EXCHANGE,
    )
    assert (connection.meter_number, connection.meter_type) == ("NEW-2", "Net meter")
    audited = set(AuditLog.objects.values_list("object_type", "action"))
    assert {("billing.meterexchange", "create"), ("billing.serviceconnection", "update")} <= audited


@pytest.mark.parametrize(
    ("change", "refusal", "field"),
    [
        (
            {"old": ("999", "2150")},
            r"old meter's final import peak register \(999\) is lower than the reading of 2023-12-28 09:00 \(1000\)",
            "finalImportPeak",
        ),
        (
            {"old": ("1080", "2150", "8")},
            r"old meter's final export peak register \(8\) is lower than the reading of",
            "finalExportPeak",
        ),
        ({"when": NOW + timedelta(minutes=1)}, "dated in the future", "exchangedAt"),
        ({"number": "OLD-1"}, "Meter OLD-1 is the one being taken out", "newMeterNumber"),
        ({"number": " "}, "Give the new meter's number", "newMeterNumber"),
        ({"reason": ""}, "Say why the meter was exchanged", "reason"),
    ],
)
def test_an_exchange_is_refused_with_the_reason(connection, change, refusal, field):
    with pytest.raises(ExchangeRefused, match=refusal) as refused:
        exchange(connection, **change)

    assert refused.value.field == field
    assert not MeterExchange.objects.exists()
    assert MeterReading.objects.count() == 1


def test_an_exchange_whose_new_meter_reads_above_a_later_reading_is_refused(connection):
    # A reading of the new meter, entered before the exchange was.
    ReadingFactory(connection=connection, taken_at=at(1, 28), import_peak=D("60"), import_off_peak=D("103"))

    with pytest.raises(
        ExchangeRefused, match=r"new meter's first import off peak register \(300\) is higher"
    ):
        exchange(connection, new=("5", "300"))


def test_an_exchange_at_the_moment_of_a_reading_is_a_conflict(connection):
    with pytest.raises(ExchangeDuplicate, match="already has a reading at 2023-12-28 09:00") as refused:
        exchange(connection, when=at(0, 28))

    assert refused.value.status == 409


def test_a_second_exchange_at_the_same_moment_is_a_conflict(connection):
    exchange(connection)

    with pytest.raises(ExchangeDuplicate, match="already has a meter exchange at 2024-01-15 14:00"):
        exchange(connection, number="NEW-3")


def test_a_disconnected_connections_meter_is_not_exchanged(connection):
    connection.status = ConnectionStatus.DISCONNECTED
    connection.save()

    with pytest.raises(ExchangeRefused, match="is disconnected; only an active connection's meter"):
        exchange(connection)


# --- readings around an exchange -----------------------------------------------------------------


def test_a_reading_after_an_exchange_is_checked_against_the_new_meter(connection):
    exchange(connection)

    with pytest.raises(
        ReadingRefused, match=r"import peak register \(4\) is lower than the reading of 2024-01-15"
    ):
        reading_record(connection=connection, taken_at=at(1, 20), registers=registers("4", "50"), now=NOW)
    # Far below the old meter's registers, and fine for the new one.
    reading_record(connection=connection, taken_at=at(1, 20), registers=registers("25", "50"), now=NOW)


def test_a_reading_before_an_exchange_may_not_pass_the_old_meters_final_reading(connection):
    exchange(connection)

    with pytest.raises(
        ReadingRefused,
        match=r"import peak register \(1081\) is higher than the old meter's final reading at the exchange",
    ):
        reading_record(
            connection=connection, taken_at=at(1, 10), registers=registers("1081", "2100", "11", "6"), now=NOW
        )


def test_an_upload_checks_readings_around_an_exchange_the_same_way(connection, tou_provider):
    exchange(connection)
    rows = [
        {"connection_id": connection.number, "timestamp": "2024-01-10T09:00", "import_peak": "1090",
         "import_off_peak": "2100", "export_peak": "11", "export_off_peak": "6"},
        {"connection_id": connection.number, "timestamp": "2024-01-20T09:00", "import_peak": "1",
         "import_off_peak": "50"},
        {"connection_id": connection.number, "timestamp": "2024-01-28T09:00", "import_peak": "60",
         "import_off_peak": "103"},
    ]  # fmt: skip

    report = readings_upload(provider=tou_provider, rows=rows, recorded_by=None)

    assert report.accepted == 1
    assert [(refusal["row"], refusal["reason"].split(". ")[0].rstrip(".")) for refusal in report.refused] == [
        (
            1,
            "The import peak register (1090) is higher than the old meter's final reading at the exchange "
            "of 2024-01-15 14:00 (1080)",
        ),
        (2, "The import peak register (1) is lower than the reading of 2024-01-15 14:00 (5)"),
    ]


# --- rating --------------------------------------------------------------------------------------


def test_a_month_with_an_exchange_is_billed_on_both_meters_parts_per_register(connection, clerk):
    exchange(connection)  # old meter 1080 / 2150 imported, 12 / 9 exported; the new one starts at 5 / 3
    reading_record(connection=connection, taken_at=at(1, 28), registers=registers("60", "103", "1"), now=NOW)

    invoice = invoice_issue(connection=connection, period=at(1, 1).date(), created_by=clerk)

    # Import: peak 80 + 55 = 135, off-peak 150 + 100 = 250. Export: peak 2 + 1 = 3, off-peak 4 + 0 = 4.
    assert (invoice.peak_units, invoice.off_peak_units) == (D("132"), D("246"))
    assert invoice.current_charges == D("11430.00")  # 132 x 40 + 246 x 25
    meters = invoice.trace["meters"]
    assert [
        (part["meter"], {name: D(units) for name, units in part["units"].items()}) for part in meters
    ] == [
        ("OLD-1", {"importPeak": 80, "importOffPeak": 150, "exportPeak": 2, "exportOffPeak": 4}),
        ("NEW-2", {"importPeak": 55, "importOffPeak": 100, "exportPeak": 1, "exportOffPeak": 0}),
    ]
    assert (invoice.end_import_peak, invoice.end_import_off_peak) == (D("60"), D("103"))


def test_a_period_across_two_exchanges_adds_up_three_meters(connection, clerk):
    exchange(connection)
    reading_record(connection=connection, taken_at=at(1, 20), registers=registers("25", "40"), now=NOW)
    exchange(connection, when=at(1, 22), old=("30", "50", "0", "0"), new=("0", "0"), number="NEW-3")
    reading_record(connection=connection, taken_at=at(1, 28), registers=registers("10", "20"), now=NOW)

    invoice = invoice_issue(connection=connection, period=at(1, 1).date(), created_by=clerk)

    # Peak: 80 - 2 exported + 25 + 10; off-peak: 150 - 4 + 47 + 20.
    assert (invoice.peak_units, invoice.off_peak_units) == (D("113"), D("213"))
    assert [part["meter"] for part in invoice.trace["meters"]] == ["OLD-1", "NEW-2", "NEW-3"]


def test_the_next_month_continues_on_the_new_meter_alone(connection, clerk):
    exchange(connection)
    reading_record(connection=connection, taken_at=at(1, 28), registers=registers("60", "103"), now=NOW)
    reading_record(connection=connection, taken_at=at(2, 5), registers=registers("70", "120"), now=NOW)
    invoice_issue(connection=connection, period=at(1, 1).date(), created_by=clerk)

    february = invoice_issue(connection=connection, period=at(2, 1).date(), created_by=clerk)

    assert (february.peak_units, february.off_peak_units, "meters" in february.trace) == (
        D("10"),
        D("17"),
        False,
    )


def test_a_month_with_a_replaced_meter_but_no_exchange_is_refused_with_what_to_do(connection, clerk):
    ReadingFactory(
        connection=connection,
        taken_at=at(1, 28),
        import_peak=D("3"),
        import_off_peak=D("7"),
        meter_replaced=True,
    )

    with pytest.raises(
        InvoiceRefused, match="replaced at 28 January 2024 09:00 without the old meter's final"
    ):
        invoice_issue(connection=connection, period=at(1, 1).date(), created_by=clerk)


def test_the_billing_run_skips_a_replaced_meter_without_its_exchange_and_bills_one_with_it(
    tou_provider, connection
):
    exchange(connection)
    ReadingFactory(connection=connection, taken_at=at(1, 28), import_peak=D("60"), import_off_peak=D("103"))
    bare = ConnectionFactory(customer=CustomerFactory(provider=tou_provider))
    ReadingFactory(connection=bare, taken_at=at(0, 28), import_peak=D("500"), import_off_peak=D("500"))
    ReadingFactory(
        connection=bare, taken_at=at(1, 28), import_peak=D("9"), import_off_peak=D("9"), meter_replaced=True
    )

    run, _ = billing_run_start(provider=tou_provider, period=at(1, 1).date(), chunk_size=10)
    for chunk_id in pending_chunks(run):
        billing_run_chunk_bill(chunk_id=chunk_id)

    assert Invoice.objects.get(connection=connection).current_charges == D("11470.00")  # 133 x 40 + 246 x 25
    [problem] = run.problems.all()
    assert (problem.connection_id, problem.kind) == (bare.pk, ProblemKind.SKIPPED)
    assert "record the meter exchange" in problem.reason


def signed_in(user, role: str) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_ROLE_KEY] = role
    session.save()
    return client


def test_the_bill_page_and_pdf_show_both_meters(connection, clerk):
    exchange(connection)
    reading_record(connection=connection, taken_at=at(1, 28), registers=registers("60", "103"), now=NOW)
    invoice = invoice_issue(connection=connection, period=at(1, 1).date(), created_by=clerk)

    page = signed_in(clerk, Role.INVOICE_CREATOR).get(f"/bills/{invoice.pk}").content.decode()
    clerk.active_role = Role.INVOICE_CREATOR
    bill = bill_get_for(user=clerk, invoice_id=invoice.pk)
    pdf = "\n".join(page.extract_text() for page in PdfReader(BytesIO(invoice_pdf(bill, bill.history))).pages)

    assert "OLD-1 (28 Dec to 15 Jan 2024), then NEW-2 (15 Jan to 28 Jan 2024)" in page
    assert "Meter <b>OLD-1</b>" in page and "Meter <b>NEW-2</b>" in page
    assert "OLD-1" in pdf and "NEW-2" in pdf
    assert "The meter was exchanged in this period" in pdf


kwh = st.decimals(min_value=0, max_value=3000, places=4)


def as_figures(bill) -> dict:
    return {
        "energy": [Fraction(line.amount) for line in bill.lines_of("energy")],
        "slabs": [trace.get("slab") for trace in bill.trace["energy"]],
        "taxes": [Fraction(line.amount) for line in bill.lines_of("tax")],
        "fixed": [Fraction(line.amount) for line in bill.lines_of("fixed")],
        "subsidies": [Fraction(line.amount) for line in bill.lines_of("subsidy")],
        "current": Fraction(bill.current_charges),
        "late": Fraction(bill.late_surcharge),
    }


@EXACT
@given(
    schedules(),
    st.lists(st.tuples(kwh, kwh, kwh, kwh, kwh, kwh), min_size=2, max_size=4),
    st.integers(min_value=28 * 86_400, max_value=31 * 86_400),
    st.sampled_from([None, D("20000")]),
)
def test_a_period_across_exchanges_is_billed_as_one_meter_reading_every_part_would_be(
    schedule, meters, seconds, income
):
    """Each meter's units (import and export per register) and, but for the last, the registers its
    successor starts at; the bill is the oracle's for one meter that counted all of them."""
    start = datetime(2024, 3, 31, 23, tzinfo=ZONE)
    step = timedelta(seconds=seconds // len(meters))
    opening = first = Reading(start, D("100"), D("200"), D("1"), D("2"))
    changes, total = [], [D(0)] * 4
    for index, (*units, next_peak, next_off_peak) in enumerate(meters):
        closing = Reading(
            start + step * (index + 1),
            *(low + part for low, part in zip(first.registers(), units, strict=True)),
        )
        total = [sum_ + part for sum_, part in zip(total, units, strict=True)]
        if index + 1 < len(meters):
            first = Reading(closing.at, next_peak, next_off_peak, D(0), D(0), replaced=True)
            changes.append(MeterChange(closing, first, f"M{index}", f"M{index + 1}"))
    one_meter = Reading(
        closing.at, *(low + part for low, part in zip(opening.registers(), total, strict=True))
    )

    usage = usage_between(opening, closing, changes)
    bill = rate_usage(usage, schedule, income=income, late_surcharge_percent=D("10"))

    assert [part["meter"] for part in usage.meters] == [f"M{index}" for index in range(len(meters))]
    assert as_figures(bill) == oracle(opening, one_meter, schedule, income)


# --- the API, the page and Django admin ------------------------------------------------------------

EXCHANGE_BODY = {
    "exchangedAt": "2024-01-15T14:00:00+05:00",
    "oldFinal": {"importPeak": "1080", "importOffPeak": "2150", "exportPeak": "12", "exportOffPeak": "9"},
    "newFirst": {"importPeak": "5", "importOffPeak": "3"},
    "newMeterNumber": "NEW-2",
    "reason": "Display burnt out",
}


@pytest.fixture
def clerk_api(as_role, clerk, time_machine):
    time_machine.move_to(NOW, tick=False)
    return as_role(clerk, Role.INVOICE_CREATOR)


def test_the_api_records_an_exchange_and_lists_the_connections_exchanges(clerk_api, connection):
    created = clerk_api.post(
        f"/api/connections/{connection.pk}/meter-exchanges", EXCHANGE_BODY, format="json"
    )
    listed = clerk_api.get(f"/api/connections/{connection.pk}/meter-exchanges")

    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["oldMeterNumber"], body["newMeterNumber"], body["reason"]) == (
        "OLD-1",
        "NEW-2",
        "Display burnt out",
    )
    assert body["oldFinal"] == {
        "importPeak": "1080.0000",
        "importOffPeak": "2150.0000",
        "exportPeak": "12.0000",
        "exportOffPeak": "9.0000",
    }
    assert body["newFirst"]["importPeak"] == "5.0000"
    assert [row["id"] for row in listed.json()] == [body["id"]]
    readings = clerk_api.get(f"/api/connections/{connection.pk}/readings").json()
    assert [(row["meterReplaced"], row["source"]) for row in readings] == [(False, "api"), (True, "exchange")]


def test_the_api_refuses_an_exchange_with_the_reason_and_a_second_one_at_that_moment(clerk_api, connection):
    url = f"/api/connections/{connection.pk}/meter-exchanges"
    low = {**EXCHANGE_BODY, "oldFinal": {"importPeak": "900", "importOffPeak": "2150"}}

    refused = clerk_api.post(url, low, format="json")
    clerk_api.post(url, EXCHANGE_BODY, format="json")
    again = clerk_api.post(url, {**EXCHANGE_BODY, "newMeterNumber": "NEW-3"}, format="json")

    assert refused.status_code == 400
    assert (refused.json()["code"], refused.json()["fields"]) == (
        "meter_exchange_refused",
        {"finalImportPeak": [refused.json()["detail"]]},
    )
    assert (again.status_code, again.json()["code"]) == (409, "meter_exchange_duplicate")


def test_another_providers_connection_is_not_found(clerk_api):
    theirs = ConnectionFactory()

    assert clerk_api.get(f"/api/connections/{theirs.pk}/meter-exchanges").status_code == 404
    assert (
        clerk_api.post(
            f"/api/connections/{theirs.pk}/meter-exchanges", EXCHANGE_BODY, format="json"
        ).status_code
        == 404
    )


@pytest.mark.parametrize(("role", "read", "write"), [(Role.AUDITOR, 200, 403), (Role.CUSTOMER, 403, 403)])
def test_who_may_read_and_record_exchanges(as_role, tou_provider, connection, role, read, write):
    client = as_role(UserFactory(provider=tou_provider, roles=[role]), role)
    url = f"/api/connections/{connection.pk}/meter-exchanges"

    assert client.get(url).status_code == read
    assert client.post(url, EXCHANGE_BODY, format="json").status_code == write


def exchange_form(connection, **changes) -> dict:
    return {
        "connectionNumber": connection.number,
        "exchangedAt": "2024-01-15T14:00",
        "finalImportPeak": "1080",
        "finalImportOffPeak": "2150",
        "finalExportPeak": "12",
        "finalExportOffPeak": "9",
        "firstImportPeak": "5",
        "firstImportOffPeak": "3",
        "newMeterNumber": "NEW-2",
        "reason": "Display burnt out",
        **changes,
    }


def test_a_clerk_records_an_exchange_on_the_page(connection, clerk, time_machine):
    time_machine.move_to(NOW, tick=False)
    browser = signed_in(clerk, Role.INVOICE_CREATOR)

    response = browser.post("/meter-exchanges/new", exchange_form(connection), follow=True)

    page = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/meter-exchanges?connection={connection.number}"
    assert "Meter NEW-2 recorded on connection" in page and "Display burnt out" in page
    assert MeterExchange.objects.get().recorded_by == clerk


def test_the_page_shows_a_refusal_next_to_its_field(connection, clerk, time_machine):
    time_machine.move_to(NOW, tick=False)
    browser = signed_in(clerk, Role.INVOICE_CREATOR)

    response = browser.post("/meter-exchanges/new", exchange_form(connection, finalImportPeak="900"))

    assert response.status_code == 400
    assert response.context["form"].errors["finalImportPeak"] == [
        "The old meter's final import peak register (900) is lower than the reading of 2023-12-28 09:00 (1000)."
    ]
    assert not MeterExchange.objects.exists()


def test_an_auditor_sees_the_exchanges_but_not_the_form(tou_provider, connection, time_machine):
    time_machine.move_to(NOW, tick=False)
    exchange(connection)
    browser = signed_in(UserFactory(provider=tou_provider, roles=[Role.AUDITOR]), Role.AUDITOR)

    listed = browser.get("/meter-exchanges")

    assert "NEW-2" in listed.content.decode()
    assert "Record a meter exchange" not in listed.content.decode()
    assert browser.get("/meter-exchanges/new").status_code == 403


def test_django_admin_records_an_exchange_through_the_service(tou_provider, connection, time_machine):
    time_machine.move_to(NOW, tick=False)
    officer = UserFactory(provider=tou_provider, roles=[Role.ADMIN])
    browser = Client()
    browser.force_login(officer)
    form = {
        "connection": connection.pk,
        "exchanged_at_0": "2024-01-15",
        "exchanged_at_1": "14:00:00",
        **{f"final_{name}": value for name, value in registers("1080", "2150", "12", "9").items()},
        **{f"first_{name}": value for name, value in registers("5", "3").items()},
        "new_meter_number": "NEW-2",
        "new_meter_type": "",
        "reason": "Display burnt out",
        "_save": "Save",
    }

    low = browser.post("/admin/billing/meterexchange/add/", {**form, "final_import_peak": "900"})
    saved = browser.post("/admin/billing/meterexchange/add/", form)

    assert "lower than the reading of 2023-12-28 09:00" in str(low.context["adminform"].form.errors)
    assert saved.status_code == 302
    recorded = MeterExchange.objects.get()
    assert (recorded.recorded_by, recorded.first_reading.source) == (officer, ReadingSource.EXCHANGE)
