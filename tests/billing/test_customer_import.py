"""Bulk onboarding: a CSV file (or a JSON list of the same rows) through the same services, each row
kept or refused whole with its reason, what is stored already left alone, the API, the command and
Django admin alike."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from accounts.roles import Role
from billing.models import ConnectionStatus, Customer, ServiceConnection
from tests.factories import ConnectionTypeFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

HEADER = (
    "customer_id,name,national_id,email,phone,address,kind,preferred_language,notify_bills,"
    "connection_id,connection_type,meter_number,meter_type,division,subdivision,installation_date,status,"
    "monthly_income,income_declared_on"
)
ROWS = [
    # A customer and their first connection, with a declared income.
    'LHR-RES-0001,Ali Ahmad,35202-1234567-1,ali@example.com,0300-1234567,"House 5, DHA",Residential,ur,yes,'
    "DISCO-RES-1101,R1,M-1,Single phase,Lahore,DHA,2024-07-01,,42000,2024-08-01",
    # The same customer's second connection: only the number names them.
    "LHR-RES-0001,,,,,,,,,DISCO-RES-1102,R1,M-2,,Lahore,DHA,2024-07-01,Active,,",
    # A customer with no connection yet.
    "LHR-COM-0002,Bilal Traders,,bilal@example.com,,,Commercial,,no,,,,,,,,,,",
    # Refused: a national id that is no CNIC.
    "LHR-RES-0003,Sara Khan,12345,,,,,,,DISCO-RES-1103,R1,,,,,,,,",
    # Refused whole: the connection's type is unknown, so the new customer is not kept either.
    "LHR-RES-0004,Omar Farooq,,,,,,,,DISCO-RES-1104,R9,,,,,,,,",
    # Refused: a date that is no date.
    "LHR-RES-0005,Hina Raza,,,,,,,,DISCO-RES-1105,R1,,,,,31/07/2024,,,",
]
CSV = "\n".join([HEADER, *ROWS]) + "\n"
TODAY = datetime(2024, 8, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(TODAY, tick=False)


@pytest.fixture
def residential(provider):
    return ConnectionTypeFactory(provider=provider, code="R1")


@pytest.fixture
def clerk(provider):
    return UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR])


@pytest.fixture
def clerk_api(as_role, clerk):
    return as_role(clerk, Role.INVOICE_CREATOR)


def upload(text: str) -> dict:
    return {"file": SimpleUploadedFile("customers.csv", text.encode(), content_type="text/csv")}


def results(body: dict) -> list[tuple]:
    return [(row["row"], row["customerId"], row["connectionId"], row["result"]) for row in body["rows"]]


def test_a_csv_file_is_loaded_row_by_row_with_each_rows_result(clerk_api, clerk, residential):
    response = clerk_api.post("/api/customers/import", upload(CSV), format="multipart")

    assert response.status_code == 200
    body = response.json()
    assert results(body) == [
        (1, "LHR-RES-0001", "DISCO-RES-1101", "created"),
        (2, "LHR-RES-0001", "DISCO-RES-1102", "created"),
        (3, "LHR-COM-0002", "", "created"),
        (4, "LHR-RES-0003", "DISCO-RES-1103", "refused"),
        (5, "LHR-RES-0004", "DISCO-RES-1104", "refused"),
        (6, "LHR-RES-0005", "DISCO-RES-1105", "refused"),
    ]
    assert (body["created"], body["unchanged"], body["refused"]) == (3, 0, 3)
    assert (body["customersCreated"], body["connectionsCreated"]) == (2, 2)
    reasons = [row["reason"] for row in body["rows"]]
    assert reasons[:3] == ["", "", ""]
    assert "A national id (CNIC) is 13 digits" in reasons[3]
    assert reasons[4] == "No connection type R9; the types are: R1."
    assert reasons[5] == "Column installation_date: '31/07/2024' is not a date like 2024-07-31."

    assert sorted(Customer.objects.values_list("number", flat=True)) == ["LHR-COM-0002", "LHR-RES-0001"]
    first = ServiceConnection.objects.get(number="DISCO-RES-1101")
    assert (first.status, first.meter_number, first.installation_date) == (
        ConnectionStatus.PENDING,
        "M-1",
        date(2024, 7, 1),
    )
    assert (first.declared_monthly_income, first.income_declared_on, first.income_recorded_by) == (
        Decimal("42000"),
        date(2024, 8, 1),
        clerk,
    )
    assert ServiceConnection.objects.get(number="DISCO-RES-1102").status == ConnectionStatus.ACTIVE
    bilal = Customer.objects.get(number="LHR-COM-0002")
    assert (bilal.kind, bilal.notify_bills, bilal.user) == ("Commercial", False, None)


def test_loading_the_file_again_leaves_what_is_stored_as_it_is(clerk_api, residential):
    clerk_api.post("/api/customers/import", upload(CSV), format="multipart")

    again = clerk_api.post("/api/customers/import", upload(CSV), format="multipart").json()

    assert [row["result"] for row in again["rows"]] == ["unchanged"] * 3 + ["refused"] * 3
    assert (Customer.objects.count(), ServiceConnection.objects.count()) == (2, 2)


def test_a_row_that_differs_from_what_is_stored_is_refused_saying_what_differs(
    clerk_api, provider, residential
):
    CustomerFactory(
        provider=provider, user=None, number="LHR-RES-0001", name="Ali Ahmad", phone="0300-1234567"
    )
    rows = [{"customer_id": "LHR-RES-0001", "name": "Ali Ahmad", "phone": "0301-0000000"}]

    body = clerk_api.post("/api/customers/import", rows, format="json").json()

    assert body["rows"][0]["result"] == "refused"
    assert body["rows"][0]["reason"] == (
        "Customer LHR-RES-0001 exists with other details: phone (0300-1234567 stored, 0301-0000000 in the "
        "file). The import only adds; change it on its page."
    )


def test_a_json_list_of_rows_is_loaded_and_empty_numbers_are_generated(clerk_api, provider, residential):
    rows = [
        {"name": "Walk-in customer", "connection_type": "R1"},
        {"name": "Second walk-in"},
        "not a row",
    ]

    body = clerk_api.post("/api/customers/import", rows, format="json")

    assert body.status_code == 400  # every row must be an object
    body = clerk_api.post("/api/customers/import", rows[:2], format="json").json()
    assert results(body) == [
        (1, f"{provider.code}-C-000001", f"{provider.code}-SC-000001", "created"),
        (2, f"{provider.code}-C-000002", "", "created"),
    ]


@pytest.mark.parametrize(
    ("upload_body", "reason"),
    [
        ({"file": SimpleUploadedFile("c.csv", b"\xff\xfe", content_type="text/csv")}, "not UTF-8"),
        ({"file": SimpleUploadedFile("c.csv", HEADER.encode(), content_type="text/csv")}, "no rows"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(clerk_api, upload_body, reason):
    response = clerk_api.post("/api/customers/import", upload_body, format="multipart")

    assert response.status_code == 400
    assert reason in response.json()["detail"]


@pytest.mark.parametrize(
    ("role", "status"), [(Role.AUDITOR, 403), (Role.CUSTOMER, 403), (Role.SUPER_CREATOR, 200)]
)
def test_who_may_import(as_role, provider, residential, role, status):
    client = as_role(UserFactory(provider=provider, roles=[role]), role)

    assert client.post("/api/customers/import", upload(CSV), format="multipart").status_code == status


def test_the_command_loads_a_csv_file_and_lists_the_refused_rows(provider, residential, tmp_path, capsys):
    path = tmp_path / "customers.csv"
    path.write_text(CSV)

    call_command("load_customers", provider.code, str(path))

    out = capsys.readouterr().out
    assert (
        f"{provider.code}: 2 customers and 2 connections created; rows: 3 created, 0 unchanged, 3 refused."
        in out
    )
    assert "  row 5 (LHR-RES-0004, DISCO-RES-1104): No connection type R9; the types are: R1." in out


def test_django_admin_imports_a_csv_file_for_the_administrators_provider(provider, residential):
    browser = Client()
    browser.force_login(UserFactory(provider=provider, roles=[Role.ADMIN]))

    listing = browser.get("/admin/billing/customer/")
    response = browser.post("/admin/billing/customer/import/", upload(CSV))

    assert "/admin/billing/customer/import/" in listing.content.decode()
    assert response.status_code == 200
    assert [(row.row, row.result) for row in response.context["report"].rows] == [
        (1, "created"), (2, "created"), (3, "created"), (4, "refused"), (5, "refused"), (6, "refused"),
    ]  # fmt: skip
    assert Customer.objects.filter(provider=provider).count() == 2
