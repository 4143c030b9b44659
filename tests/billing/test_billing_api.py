from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.roles import Role
from billing.importing import sample_import
from billing.models import MeterReading, ServiceConnection
from providers.importing import price_schedule_import
from providers.services import provider_price_set
from tests.factories import ConnectionFactory, ConnectionTypeFactory, UserFactory
from tests.sample_data import EXAMPLES, SAMPLE

pytestmark = pytest.mark.django_db
EXAMPLE = EXAMPLES[0]  # DISCO-RES-1101, 2024-07
ONE_CONNECTION = {
    **SAMPLE,
    "meter_readings": [r for r in SAMPLE["meter_readings"] if r["connection_id"] == EXAMPLE["connection_id"]],
}


@pytest.fixture
def disco(provider):
    price_schedule_import(provider=provider, data=SAMPLE)
    sample_import(provider=provider, data=ONE_CONNECTION)
    return provider


@pytest.fixture
def clerk_api(as_role, provider):
    return as_role(UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR]), Role.INVOICE_CREATOR)


@pytest.fixture
def connection(disco):
    return ServiceConnection.objects.get(provider=disco, number=EXAMPLE["connection_id"])


def test_the_bill_preview_shows_the_worked_example_with_lines_and_trace(clerk_api, connection):
    response = clerk_api.get(f"/api/connections/{connection.pk}/bill-preview?year=2024&month=7")

    assert response.status_code == 200
    body = response.json()
    assert (body["currentCharges"], body["payableAfterDue"]) == (
        EXAMPLE["current_charges"],
        EXAMPLE["payable_after_due"],
    )
    assert [(line["kind"], line["amount"]) for line in body["lines"]] == [
        ("energy", EXAMPLE["peak_charge"]),
        ("energy", EXAMPLE["off_peak_charge"]),
        *[("tax", tax["amount"]) for tax in EXAMPLE["taxes"]],
        *[("fixed", fee["amount"]) for fee in EXAMPLE["fixed"]],
        *[("subsidy", subsidy["amount"]) for subsidy in EXAMPLE["subsidies"]],
    ]
    assert body["trace"]["billingDays"].startswith("30")
    assert [(e["bucket"], e["slab"]) for e in body["trace"]["energy"]] == [("peak", 2), ("off_peak", 1)]
    assert body["trace"]["subsidyTests"][0]["applies"] is True
    assert not MeterReading.objects.filter(connection=connection).exclude(source="import").exists()


def test_a_month_without_readings_cannot_be_previewed(clerk_api, connection):
    response = clerk_api.get(f"/api/connections/{connection.pk}/bill-preview?year=2021&month=3")

    assert response.status_code == 400
    assert response.json()["code"] == "no_readings"


@pytest.mark.parametrize("query", ["year=2024", "year=2024&month=13", "year=abc&month=1"])
def test_a_preview_needs_a_valid_year_and_month(clerk_api, connection, query):
    response = clerk_api.get(f"/api/connections/{connection.pk}/bill-preview?{query}")

    assert response.status_code == 400
    assert "fields" in response.json()


def test_another_providers_connection_cannot_be_previewed_or_read(clerk_api):
    theirs = ConnectionFactory()

    assert clerk_api.get(f"/api/connections/{theirs.pk}/bill-preview?year=2024&month=7").status_code == 404
    assert clerk_api.get(f"/api/connections/{theirs.pk}/readings").status_code == 404
    assert clerk_api.post(f"/api/connections/{theirs.pk}/readings", {}, format="json").status_code == 404


def test_a_customer_may_not_preview_a_connection(as_role, provider, connection):
    customer = as_role(UserFactory(provider=provider, roles=[Role.CUSTOMER]), Role.CUSTOMER)

    assert customer.get(f"/api/connections/{connection.pk}/bill-preview?year=2024&month=7").status_code == 403


def test_the_calculator_estimates_a_month_for_a_customer(as_role, disco, time_machine):
    time_machine.move_to(datetime(2024, 8, 15, 12, tzinfo=UTC), tick=False)
    customer = as_role(UserFactory(provider=disco, roles=[Role.CUSTOMER]), Role.CUSTOMER)
    usage = {"connectionType": "2", "peakKwh": "217", "offPeakKwh": "211", "days": "30"}

    response = customer.post("/api/calculator", usage, format="json")

    # The worked example of DISCO-RES-1101 for July 2024, on the prices in force that August.
    assert response.status_code == 200
    assert response.json()["currentCharges"] == "9151.64"


def test_the_calculator_gives_no_estimate_once_the_prices_have_ended(as_role, disco, time_machine):
    time_machine.move_to(datetime(2025, 1, 1, 12, tzinfo=UTC), tick=False)
    customer = as_role(UserFactory(provider=disco, roles=[Role.CUSTOMER]), Role.CUSTOMER)
    usage = {"connectionType": "2", "peakKwh": "217", "offPeakKwh": "211", "days": "30"}

    response = customer.post("/api/calculator", usage, format="json")

    # The sample's prices end on 2024-12-31: no tariff is in force for the calculator.
    assert response.status_code == 400
    assert "No estimate" in response.json()["detail"]


def test_the_calculator_uses_todays_prices(as_role, provider):
    provider_price_set(provider=provider, price=Decimal("30"), changed_by=None)
    ConnectionTypeFactory(provider=provider, code="R1")
    customer = as_role(UserFactory(provider=provider, roles=[Role.CUSTOMER]), Role.CUSTOMER)

    response = customer.post(
        "/api/calculator", {"connectionType": "R1", "peakKwh": "100", "offPeakKwh": "50.5"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["currentCharges"] == "4515.00"


def test_a_reading_through_the_api_and_its_refusal(clerk_api, connection):
    url = f"/api/connections/{connection.pk}/readings"
    good = {"takenAt": "2025-01-31T23:59:00+05:00", "importPeak": "99999", "importOffPeak": "99999"}
    lower = {"takenAt": "2025-02-28T23:59:00+05:00", "importPeak": "1", "importOffPeak": "99999"}

    created = clerk_api.post(url, good, format="json")
    refused = clerk_api.post(url, lower, format="json")

    assert created.status_code == 201
    assert created.json()["source"] == "api"
    assert refused.status_code == 400
    assert refused.json()["code"] == "reading_refused"
    assert refused.json()["fields"] == {"import_peak": [refused.json()["detail"]]}


def test_a_csv_upload_keeps_good_rows_and_reports_bad_ones(clerk_api, connection):
    csv_text = (
        "connection_id,timestamp,import_peak,import_off_peak\n"
        f"{connection.number},2025-01-31T23:59:00,99999,99999\n"
        f"{connection.number},2025-02-28T23:59:00,1,1\n"
        "UNKNOWN-1,2025-02-28T23:59:00,1,1\n"
    )
    upload = SimpleUploadedFile("readings.csv", csv_text.encode(), content_type="text/csv")

    response = clerk_api.post("/api/readings/upload", {"file": upload}, format="multipart")

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["unchanged"]) == (1, 0)
    assert [(r["row"], r["connectionId"]) for r in body["refused"]] == [
        (2, connection.number),
        (3, "UNKNOWN-1"),
    ]


def test_an_auditor_reads_readings_but_cannot_add_them(as_role, provider, connection):
    auditor = as_role(UserFactory(provider=provider, roles=[Role.AUDITOR]), Role.AUDITOR)

    assert auditor.get(f"/api/connections/{connection.pk}/readings").status_code == 200
    assert auditor.post("/api/readings/upload", [], format="json").status_code == 403


def test_connections_are_listed_for_the_callers_provider_only(clerk_api, connection):
    theirs = ConnectionFactory()

    body = clerk_api.get("/api/connections?pageSize=200").json()

    numbers = [c["connectionId"] for c in body["results"]]
    assert (body["count"], theirs.number in numbers, connection.number in numbers) == (75, False, True)
    assert (
        next(c for c in body["results"] if c["connectionId"] == connection.number)["installationDate"]
        == "2022-04-01"
    )


def test_a_reading_dated_year_one_is_a_400_not_a_crash(clerk_api, connection):
    response = clerk_api.post(
        f"/api/connections/{connection.pk}/readings",
        {"takenAt": "0001-01-01T03:00:00", "importPeak": "1", "importOffPeak": "1"},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["takenAt"]


def test_a_csv_that_is_not_csv_is_a_400(clerk_api, connection):
    huge_cell = "connection_id,timestamp\n" + "x" * 200_000 + ",2025-01-01T00:00\n"
    upload = SimpleUploadedFile("readings.csv", huge_cell.encode(), content_type="text/csv")

    response = clerk_api.post("/api/readings/upload", {"file": upload}, format="multipart")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("The file is not valid CSV")
