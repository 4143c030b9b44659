"""Customers through `customer_create` and `customer_update`: numbered as given or from the provider's
series, contact details checked, each refusal with its reason, every write audited."""

import pytest

from auditing.models import AuditLog
from billing.models import Customer, CustomerKind, Language, NumberCounter, NumberSeries
from billing.services import NumberTaken, customer_create, customer_update
from config.errors import DomainError
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_a_customer_without_a_number_gets_the_next_of_its_providers_series(provider, other_provider):
    first = customer_create(provider=provider, name="Ali Ahmad")
    second = customer_create(provider=provider, name="Sara Khan")
    elsewhere = customer_create(provider=other_provider, name="Omar Farooq")

    assert (first.number, second.number) == (f"{provider.code}-C-000001", f"{provider.code}-C-000002")
    assert elsewhere.number == f"{other_provider.code}-C-000001"
    assert NumberCounter.objects.get(provider=provider, series=NumberSeries.CUSTOMER).last == 2


def test_the_series_skips_a_number_already_given_by_hand(provider):
    customer_create(provider=provider, name="Given", number=f"{provider.code}-C-000001")

    generated = customer_create(provider=provider, name="Generated")

    assert generated.number == f"{provider.code}-C-000002"


def test_a_customer_keeps_its_own_contact_details_and_choices(provider):
    customer = customer_create(
        provider=provider,
        number=" LHR-RES-0001 ",
        name="  Ali   Ahmad ",
        email="Ali.Ahmad@Example.COM ",
        phone=" 0300-1234567 ",
        address="House 5, DHA, Lahore",
        national_id="3520212345671",
        kind=CustomerKind.COMMERCIAL,
        organisation="Ahmad Traders",
        preferred_language=Language.URDU,
        notify_bills=False,
    )

    customer.refresh_from_db()
    assert (customer.number, customer.name, customer.email, customer.phone) == (
        "LHR-RES-0001",
        "Ali Ahmad",
        "ali.ahmad@example.com",
        "0300-1234567",
    )
    assert customer.national_id == "35202-1234567-1"  # 13 digits get their dashes
    assert (customer.kind, customer.preferred_language, customer.notify_bills, customer.notify_reminders) == (
        CustomerKind.COMMERCIAL,
        Language.URDU,
        False,
        True,
    )
    assert customer.user is None  # a login is optional


def test_a_number_the_provider_already_gave_is_a_conflict_that_names_it(provider):
    CustomerFactory(provider=provider, number="LHR-RES-0001")

    with pytest.raises(NumberTaken, match="Customer LHR-RES-0001 already exists") as refused:
        customer_create(provider=provider, name="Someone else", number="LHR-RES-0001")

    assert (refused.value.status, refused.value.code, refused.value.field) == (
        409,
        "number_taken",
        "customerId",
    )


def test_another_provider_may_use_the_same_number(provider, other_provider):
    CustomerFactory(provider=other_provider, number="LHR-RES-0001")

    assert customer_create(provider=provider, name="Ali", number="LHR-RES-0001").provider == provider


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"national_id": "35202-123456-1"}, "nationalId", "is 13 digits written 12345-1234567-1"),
        ({"national_id": "ABCDE-1234567-1"}, "nationalId", "is not one"),
        ({"email": "not-an-address"}, "email", "Enter a valid email address"),
        ({"phone": "call me"}, "phoneNumber", "A phone number has 7 to 15 digits"),
        ({"phone": "12-34"}, "phoneNumber", "A phone number has 7 to 15 digits"),
        ({"name": "   "}, "name", "Give the customer's name"),
        ({"number": "LHR RES 1"}, "customerId", "A customer number is up to 40 letters, digits"),
        ({"kind": "Household"}, "kind", "Kind: Value 'Household' is not a valid choice"),
        ({"preferred_language": "fr"}, "preferredLanguage", "is not a valid choice"),
    ],
)
def test_a_customer_with_details_that_cannot_be_right_is_refused_at_the_field(
    provider, fields, field, reason
):
    with pytest.raises(DomainError, match=reason) as refused:
        customer_create(provider=provider, **{"name": "Ali Ahmad", **fields})

    assert refused.value.field == field
    assert not Customer.objects.exists()
    assert not NumberCounter.objects.filter(last__gt=0).exists()  # no number was used up


def test_a_login_needs_an_email(provider):
    with pytest.raises(DomainError, match="A login needs the customer's e-mail address"):
        customer_create(provider=provider, name="Ali", login=True)


def test_a_change_of_contact_details_is_saved_and_the_number_stays(provider):
    customer = CustomerFactory(provider=provider, number="LHR-RES-0001", user=None, name="Ali")

    changed = customer_update(
        customer=customer, phone="0301 765 4321", email="NEW@example.com", notify_reminders=False
    )

    changed.refresh_from_db()
    assert (changed.number, changed.phone, changed.email, changed.notify_reminders) == (
        "LHR-RES-0001",
        "0301 765 4321",
        "new@example.com",
        False,
    )


def test_a_change_is_refused_with_its_reason_and_nothing_is_saved(provider):
    customer = CustomerFactory(
        provider=provider, user=None, national_id="35202-1234567-1", phone="0300-1234567"
    )

    with pytest.raises(DomainError, match="national id") as refused:
        customer_update(customer=customer, phone="0301-7654321", national_id="123")

    assert refused.value.field == "nationalId"
    customer.refresh_from_db()
    assert (customer.phone, customer.national_id) == ("0300-1234567", "35202-1234567-1")


def test_the_number_is_not_among_what_a_change_may_touch(provider):
    with pytest.raises(ValueError, match="cannot change"):
        customer_update(customer=CustomerFactory(provider=provider), number="X-1")


def test_creating_and_changing_a_customer_is_audited_with_what_changed(provider):
    customer = customer_create(provider=provider, name="Ali Ahmad", phone="0300-1234567")
    customer_update(customer=customer, phone="0301-7654321", name="Ali Ahmad")  # the name is unchanged

    trail = AuditLog.objects.filter(object_type="billing.customer", object_id=str(customer.pk)).order_by("pk")
    assert [entry.action for entry in trail] == ["create", "update"]
    # Only what changed is recorded (personal details as keyed digests, not in clear).
    assert set(trail[1].old_values) == set(trail[1].new_values) == {"phone"}
    assert trail[1].old_values != trail[1].new_values
