"""The customer and connection API end to end: list with filters, create, read, change, declare an
income; another provider's customer or connection is a 404 on every address; each role may do what
accounts/permissions.py says, and nothing else; refusals in the one error shape."""

from datetime import UTC, datetime

import pytest

from accounts.roles import Role
from billing.models import ConnectionStatus, Customer, ServiceConnection
from tests.factories import ConnectionFactory, ConnectionTypeFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
TODAY = datetime(2024, 8, 15, 12, 0, tzinfo=UTC)
STAFF = [Role.ADMIN, Role.SUPER_CREATOR, Role.INVOICE_CREATOR, Role.AUDITOR]


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(TODAY, tick=False)


@pytest.fixture
def api_as(as_role, provider):
    """An API client of `provider`, acting in `role`."""
    return lambda role: as_role(UserFactory(provider=provider, roles=[role]), role)


@pytest.fixture
def admin(api_as):
    return api_as(Role.ADMIN)


@pytest.fixture
def residential(provider):
    return ConnectionTypeFactory(provider=provider, code="R1", description="Residential")


@pytest.fixture
def customer(provider):
    return CustomerFactory(provider=provider, user=None, number="LHR-RES-0001", name="Ali Ahmad")


@pytest.fixture
def connection(customer, residential):
    return ConnectionFactory(customer=customer, connection_type=residential, number="DISCO-RES-1101")


@pytest.fixture
def theirs(other_provider):
    """Another provider's customer with a connection."""
    return ConnectionFactory(customer=CustomerFactory(provider=other_provider, user=None), number="THEIRS-1")


# --- customers -----------------------------------------------------------------------------------


def test_a_customer_is_opened_with_the_next_number_and_its_details(admin, provider):
    body = {
        "name": "Sara Khan",
        "nationalId": "35202-7654321-2",
        "email": "Sara@Example.com",
        "phoneNumber": "0301-2345678",
        "address": "House 15, Model Town, Lahore",
        "kind": "Residential",
        "preferredLanguage": "ur",
        "notifyReminders": False,
    }

    response = admin.post("/api/customers", body, format="json")

    assert response.status_code == 201
    created = response.json()
    assert created["customerId"] == f"{provider.code}-C-000001"
    assert {
        key: created[key] for key in ("email", "preferredLanguage", "notifyBills", "notifyReminders")
    } == {
        "email": "sara@example.com",
        "preferredLanguage": "ur",
        "notifyBills": True,
        "notifyReminders": False,
    }
    assert (created["userId"], created["connectionCount"], created["connections"]) == (None, 0, [])
    assert Customer.objects.get(pk=created["id"]).provider == provider


def test_a_taken_customer_number_is_a_409_naming_it(admin, customer):
    response = admin.post("/api/customers", {"customerId": "LHR-RES-0001", "name": "Other"}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "Customer LHR-RES-0001 already exists: give another number, or none to have one given.",
        "code": "number_taken",
        "fields": {
            "customerId": [
                "Customer LHR-RES-0001 already exists: give another number, or none to have one given."
            ]
        },
    }


def test_a_bad_national_id_is_a_400_at_its_field(admin):
    response = admin.post("/api/customers", {"name": "Ali", "nationalId": "12345"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["nationalId"]
    assert not Customer.objects.exists()


def test_the_customer_list_is_the_providers_own_and_filters(admin, customer, connection, theirs):
    CustomerFactory(
        provider=customer.provider, user=None, number="LHR-COM-0002", name="Bilal Traders", kind="Commercial"
    )

    everyone = admin.get("/api/customers").json()
    found = admin.get("/api/customers", {"search": "ali ah"}).json()
    commercial = admin.get("/api/customers", {"kind": "Commercial"}).json()
    pending = admin.get("/api/customers", {"connectionStatus": "Pending"}).json()

    assert [row["customerId"] for row in everyone["results"]] == ["LHR-COM-0002", "LHR-RES-0001"]
    assert everyone["count"] == 2
    assert [row["customerId"] for row in found["results"]] == ["LHR-RES-0001"]
    assert [row["customerId"] for row in commercial["results"]] == ["LHR-COM-0002"]
    assert pending["results"] == []  # the factory's connection is Active


def test_a_customer_is_read_with_its_connections(admin, customer, connection):
    body = admin.get(f"/api/customers/{customer.pk}").json()

    assert (body["customerId"], body["connectionCount"]) == ("LHR-RES-0001", 1)
    assert body["connections"] == [
        {
            "id": connection.pk,
            "connectionId": "DISCO-RES-1101",
            "connectionType": "R1",
            "meterNumber": "",
            "installationDate": None,
            "status": "Active",
        }
    ]


def test_a_customers_details_change_and_its_number_stays(admin, customer):
    response = admin.patch(
        f"/api/customers/{customer.pk}", {"phoneNumber": "0300 111 2222", "notifyBills": False}, format="json"
    )
    renumbered = admin.patch(f"/api/customers/{customer.pk}", {"customerId": "NEW-1"}, format="json")

    assert response.status_code == 200
    assert (response.json()["phoneNumber"], response.json()["notifyBills"]) == ("0300 111 2222", False)
    assert renumbered.status_code == 400
    assert renumbered.json()["fields"] == {
        "customerId": ["A customer's number stays: it is printed on every bill."]
    }
    customer.refresh_from_db()
    assert (customer.number, customer.phone) == ("LHR-RES-0001", "0300 111 2222")


# --- connections ---------------------------------------------------------------------------------


def test_a_connection_is_added_pending_to_a_customer_named_by_id_or_number(
    admin, provider, customer, residential
):
    by_id = admin.post(
        "/api/connections",
        {
            "customer": customer.pk,
            "connectionType": "R1",
            "meterNumber": "M-1",
            "installationDate": "2024-08-01",
        },
        format="json",
    )
    by_number = admin.post(
        "/api/connections",
        {"customerId": "LHR-RES-0001", "connectionId": "DISCO-RES-2001", "connectionType": "R1"},
        format="json",
    )

    assert (by_id.status_code, by_number.status_code) == (201, 201)
    assert (by_id.json()["connectionId"], by_id.json()["status"], by_id.json()["customer"]) == (
        f"{provider.code}-SC-000001",
        "Pending",
        customer.pk,
    )
    assert (by_number.json()["connectionId"], by_number.json()["customerId"]) == (
        "DISCO-RES-2001",
        "LHR-RES-0001",
    )


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"customer": 1, "customerId": "LHR-RES-0001", "connectionType": "R1"}, 400, "customer"),
        ({"connectionType": "R1"}, 400, "customer"),
        ({"customerId": "LHR-RES-0001", "connectionType": "NOPE"}, 400, "connectionType"),
        ({"customerId": "NO-SUCH", "connectionType": "R1"}, 404, "customerId"),
        (
            {"customerId": "LHR-RES-0001", "connectionType": "R1", "connectionId": "DISCO-RES-1101"},
            409,
            "connectionId",
        ),
    ],
)
def test_a_connection_that_cannot_be_added_is_refused_with_the_reason(admin, connection, body, status, field):
    response = admin.post("/api/connections", body, format="json")

    assert response.status_code == status
    assert field in response.json()["fields"]
    assert ServiceConnection.objects.count() == 1


def test_another_providers_connection_type_is_not_found_among_ours(admin, customer, other_provider):
    ConnectionTypeFactory(provider=other_provider, code="X9")

    response = admin.post(
        "/api/connections", {"customer": customer.pk, "connectionType": "X9"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("No connection type X9; the types are:")


def test_the_connection_list_filters(admin, customer, connection, residential):
    ConnectionFactory(
        customer=customer, connection_type=residential, number="DISCO-RES-1102", status="Pending"
    )

    pending = admin.get("/api/connections", {"status": "Pending"}).json()
    of_customer = admin.get("/api/connections", {"customer": customer.pk, "search": "1101"}).json()
    too_big = admin.get("/api/connections", {"customer": 2**70})

    assert [row["connectionId"] for row in pending["results"]] == ["DISCO-RES-1102"]
    assert [row["connectionId"] for row in of_customer["results"]] == ["DISCO-RES-1101"]
    assert too_big.status_code == 400


def test_a_connections_details_change_but_not_its_life(admin, connection):
    changed = admin.patch(
        f"/api/connections/{connection.pk}", {"meterType": "Smart", "division": "Kasur"}, format="json"
    )
    statuses = admin.patch(f"/api/connections/{connection.pk}", {"status": "Disconnected"}, format="json")
    retyped = admin.patch(f"/api/connections/{connection.pk}", {"connectionType": "R2"}, format="json")

    assert changed.status_code == 200
    assert (changed.json()["meterType"], changed.json()["division"]) == ("Smart", "Kasur")
    assert statuses.status_code == 400
    assert "connected, disconnected, reconnected or closed" in statuses.json()["fields"]["status"][0]
    assert retyped.status_code == 400 and "connectionType" in retyped.json()["fields"]
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ACTIVE


def test_an_income_is_declared_with_the_day_and_the_recorder(api_as, connection):
    clerk = api_as(Role.INVOICE_CREATOR)

    response = clerk.post(
        f"/api/connections/{connection.pk}/income", {"monthlyIncome": "42000"}, format="json"
    )
    future = clerk.post(
        f"/api/connections/{connection.pk}/income",
        {"monthlyIncome": "1000", "declaredOn": "2024-08-16"},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["declaredMonthlyIncome"], body["incomeDeclaredOn"]) == ("42000.00", "2024-08-15")
    assert body["incomeRecordedBy"].startswith("User ")
    assert future.status_code == 400 and "declaredOn" in future.json()["fields"]


# --- another provider's ----------------------------------------------------------------------------


def test_another_providers_customer_and_connection_are_not_found_anywhere(admin, theirs):
    customer = theirs.customer
    answers = {
        "read customer": admin.get(f"/api/customers/{customer.pk}").status_code,
        "change customer": admin.patch(
            f"/api/customers/{customer.pk}", {"name": "Mine"}, format="json"
        ).status_code,
        "read connection": admin.get(f"/api/connections/{theirs.pk}").status_code,
        "change connection": admin.patch(
            f"/api/connections/{theirs.pk}", {"division": "Mine"}, format="json"
        ).status_code,
        "declare income": admin.post(
            f"/api/connections/{theirs.pk}/income", {"monthlyIncome": "1"}, format="json"
        ).status_code,
        "add a connection": admin.post(
            "/api/connections", {"customer": customer.pk, "connectionType": "1"}, format="json"
        ).status_code,
    }
    listed = admin.get("/api/customers").json()["count"] + admin.get("/api/connections").json()["count"]

    assert answers == dict.fromkeys(answers, 404)
    assert listed == 0
    theirs.refresh_from_db()
    theirs.customer.refresh_from_db()
    assert theirs.customer.name != "Mine"
    assert (theirs.division, theirs.declared_monthly_income) == ("", None)


# --- roles -----------------------------------------------------------------------------------------

# What each role may do, as accounts/permissions.py states it: the clerk opens accounts and records
# incomes; changing details is for the super creator and the administrator; the auditor reads.
MAY = {
    Role.ADMIN: {"read", "add customer", "change customer", "add connection", "change connection", "declare"},
    Role.SUPER_CREATOR: {
        "read",
        "add customer",
        "change customer",
        "add connection",
        "change connection",
        "declare",
    },
    Role.INVOICE_CREATOR: {"read", "add customer", "add connection", "declare"},
    Role.AUDITOR: {"read"},
    Role.CUSTOMER: set(),
}


@pytest.mark.parametrize("role", list(MAY))
def test_each_role_may_do_what_the_policy_says_and_nothing_else(api_as, role, customer, connection):
    client = api_as(role)
    allowed = {
        "read": client.get(f"/api/customers/{customer.pk}").status_code == 200
        and client.get(f"/api/connections/{connection.pk}").status_code == 200,
        "add customer": client.post("/api/customers", {"name": "New"}, format="json").status_code == 201,
        "change customer": client.patch(
            f"/api/customers/{customer.pk}", {"address": "Gulberg"}, format="json"
        ).status_code
        == 200,
        "add connection": client.post(
            "/api/connections", {"customer": customer.pk, "connectionType": "R1"}, format="json"
        ).status_code
        == 201,
        "change connection": client.patch(
            f"/api/connections/{connection.pk}", {"division": "Kasur"}, format="json"
        ).status_code
        == 200,
        "declare": client.post(
            f"/api/connections/{connection.pk}/income", {"monthlyIncome": "1000"}, format="json"
        ).status_code
        == 200,
    }

    assert {action for action, done in allowed.items() if done} == MAY[role]


def test_a_forbidden_change_is_a_403_in_the_error_shape(api_as, customer):
    response = api_as(Role.AUDITOR).patch(f"/api/customers/{customer.pk}", {"name": "X"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
