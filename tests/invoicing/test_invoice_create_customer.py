"""POST /api/invoices names whom to bill as the second seed does: `customerId` is the customer's USER id
(a user holding the Customer role in the caller's provider), `connectionId` a connection's id or printed
number. Anything that could bill someone else is refused, saying what to send."""

import pytest

from accounts.roles import Role
from invoicing.models import Invoice
from tests.factories import ConnectionFactory, CustomerFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db


def create(api, **body):
    return api.post("/api/invoices", {"month": "2024-01", "kwhConsumed": "10", **body}, format="json")


@pytest.fixture
def api(as_role, creator):
    return as_role(creator, Role.INVOICE_CREATOR)


@pytest.fixture
def x(flat_provider):
    """Customer X's one connection."""
    return billable_connection(flat_provider)


@pytest.fixture
def y(flat_provider, x):
    """Customer Y's one connection; Y's internal customer id is X's user id (the old confusion)."""
    assert x.customer.pk != x.customer.user_id
    return ConnectionFactory(customer=CustomerFactory(pk=x.customer.user_id, provider=flat_provider))


def test_customer_x_user_id_bills_x_even_when_it_is_customer_y_internal_id(api, x, y):
    response = create(api, customerId=x.customer.user_id)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["connectionNumber"], body["customerId"], body["customerUserId"]) == (
        x.number,
        x.customer.number,
        x.customer.user_id,
    )
    assert not Invoice.objects.filter(customer=y.customer).exists()


def test_a_connection_of_another_customer_is_refused(api, x, y):
    response = create(api, customerId=x.customer.user_id, connectionId=y.pk)

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["connectionId"]
    assert x.number in response.json()["detail"]  # the connections that would do
    assert not Invoice.objects.exists()


def test_the_customers_own_connection_named_by_id_is_billed(api, x):
    response = create(api, customerId=x.customer.user_id, connectionId=x.pk)

    assert response.status_code == 201, response.json()
    assert response.json()["connectionId"] == x.pk


def test_a_connection_may_be_named_by_its_printed_number(api, x):
    response = create(api, customerId=x.customer.user_id, connectionId=x.number)

    assert response.status_code == 201, response.json()
    assert response.json()["connectionNumber"] == x.number


def test_a_customer_with_several_connections_must_name_one(api, flat_provider, x):
    second = ConnectionFactory(customer=x.customer, provider=flat_provider)

    response = create(api, customerId=x.customer.user_id)

    assert response.status_code == 400
    body = response.json()
    assert list(body["fields"]) == ["connectionId"]
    assert x.number in body["detail"]
    assert second.number in body["detail"]
    assert not Invoice.objects.exists()


def test_naming_one_of_several_connections_bills_that_one(api, flat_provider, x):
    second = ConnectionFactory(customer=x.customer, provider=flat_provider)

    response = create(api, customerId=x.customer.user_id, connectionId=second.number)

    assert response.status_code == 201, response.json()
    assert response.json()["connectionNumber"] == second.number


@pytest.fixture
def not_customers(flat_provider, other_provider, creator):
    """User ids that name no customer of the caller's provider: the caller's colleague, another
    provider's customer (with a connection there), and no user at all."""
    colleague = UserFactory(provider=flat_provider, roles=[Role.AUDITOR])
    foreign = billable_connection(other_provider)
    return {
        "colleague": colleague.pk,
        "another provider's customer": foreign.customer.user_id,
        "nobody": foreign.customer.user_id + 1000,
    }


@pytest.mark.parametrize("who", ["colleague", "another provider's customer", "nobody"])
def test_a_user_id_that_is_no_customer_of_the_provider_is_not_found(api, x, not_customers, who):
    user_id = not_customers[who]

    response = create(api, customerId=user_id)

    assert response.status_code == 404
    body = response.json()
    assert body["detail"] == (
        f"No customer with user id {user_id} has a connection in your company. customerId is the user id "
        "of a customer (a user with the Customer role: customerUserId in GET /api/connections); or name "
        "the connection (connectionId)."
    )
    assert list(body["fields"]) == ["customerId"]
    assert not Invoice.objects.exists()


def test_a_customer_account_whose_user_lost_the_customer_role_is_not_found(api, x):
    x.customer.user.roles.filter(role=Role.CUSTOMER).update(role=Role.AUDITOR)

    response = create(api, customerId=x.customer.user_id)

    assert response.status_code == 404
    assert not Invoice.objects.exists()


def test_digits_naming_one_connections_id_and_anothers_number_are_refused(api, flat_provider, x):
    ConnectionFactory(provider=flat_provider, customer=x.customer, number=str(x.pk))

    response = create(api, connectionId=str(x.pk))

    assert response.status_code == 400
    assert "as a JSON number" in response.json()["detail"]
    assert not Invoice.objects.exists()


def test_neither_customer_nor_connection_says_what_to_send(api, x):
    response = create(api)

    assert response.status_code == 400
    assert "customerId" in response.json()["detail"]
    assert "connectionId" in response.json()["detail"]


@pytest.mark.parametrize("value", [True, 1.5, [1], "", "x" * 41])
def test_a_connection_reference_of_the_wrong_kind_is_a_field_error(api, x, value):
    response = create(api, connectionId=value)

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["connectionId"]


def test_the_schema_documents_customer_id_as_the_customers_user_id(api):
    schema = api.get("/api/schema/?format=json").json()

    fields = schema["components"]["schemas"]["InvoiceCreateInputRequest"]["properties"]
    assert "USER id" in fields["customerId"]["description"]
    assert [kind["type"] for kind in fields["connectionId"]["oneOf"]] == ["integer", "string"]


def test_the_connection_list_gives_the_user_id_to_send_as_customer_id(api, x):
    [listed] = api.get("/api/connections").json()["results"]

    response = create(api, customerId=listed["customerUserId"])

    assert listed["customerUserId"] == x.customer.user_id
    assert response.status_code == 201, response.json()
    assert response.json()["connectionNumber"] == x.number
