"""The portal's self-service pages (every connection, billed or not; the customer's details and e-mail
choices; sending a meter reading) and the staff's e-mail page with its invite button."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Message, MessageKind, MessageStatus
from accounts.roles import Role
from billing.models import Customer, MeterReading, ReadingSource
from invoicing.services import invoice_issue
from tests.factories import ConnectionFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
JANUARY = date(2024, 1, 1)


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(datetime(2024, 4, 2, 9, tzinfo=UTC), tick=False)


@pytest.fixture
def customer(connection):
    return connection.customer


@pytest.fixture
def portal(signed_in, customer):
    return signed_in(customer.user, Role.CUSTOMER)


@pytest.fixture
def new_connection(customer, flat_provider):
    """A connection of the customer, never read nor billed."""
    return ConnectionFactory(customer=customer, provider=flat_provider, number="NEW-0001")


def test_the_portal_lists_every_connection_of_the_customer_billed_or_not(
    portal, connection, new_connection, creator
):
    invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    html = portal.get(reverse("portal-home")).content.decode()

    assert connection.number in html and "NEW-0001" in html
    assert "No bill yet" in html
    assert reverse("portal-reading", args=[new_connection.pk]) in html


def test_a_customer_changes_their_details_and_email_choices(portal, customer):
    page = portal.get(reverse("portal-profile"))
    saved = portal.post(
        reverse("portal-profile"),
        {
            "email": "home@example.com",
            "phone": "0333 1112223",
            "address": "House 9, Model Town",
            "preferred_language": "ur",
            "notify_bills": "on",
            "notify_payments": "on",
        },
        follow=True,
    )

    customer.refresh_from_db()
    assert page.status_code == 200 and customer.user.email in page.content.decode()
    assert "Your details are saved." in saved.content.decode()
    assert (customer.email, customer.phone, customer.address, customer.preferred_language) == (
        "home@example.com",
        "0333 1112223",
        "House 9, Model Town",
        "ur",
    )
    assert (customer.notify_bills, customer.notify_reminders, customer.notify_payments) == (True, False, True)


def test_an_invalid_address_is_refused_next_to_its_field_and_kept(portal, customer):
    response = portal.post(
        reverse("portal-profile"), {"email": "not-an-address", "preferred_language": "en", "phone": "0300"}
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_email_error"' in html and "not-an-address" in html
    assert Customer.objects.get(pk=customer.pk).email == customer.email


def test_a_customer_sends_a_reading_of_a_connection_with_no_bill_yet(portal, customer, new_connection):
    form = portal.get(reverse("portal-reading", args=[new_connection.pk]))
    sent = portal.post(
        reverse("portal-reading", args=[new_connection.pk]),
        {"taken_at": "2024-04-01T08:30", "import_peak": "12.5", "import_off_peak": "40"},
        follow=True,
    )

    reading = MeterReading.objects.get(connection=new_connection)
    assert "No reading of this meter yet." in form.content.decode()
    assert "Your reading of NEW-0001 is recorded. Thank you." in sent.content.decode()
    assert (reading.source, reading.recorded_by, reading.import_peak, reading.export_peak) == (
        ReadingSource.SELF,
        customer.user,
        Decimal("12.5"),
        Decimal("0"),
    )


def test_a_reading_lower_than_the_last_is_refused_next_to_its_register(portal, connection):
    response = portal.post(
        reverse("portal-reading", args=[connection.pk]),
        {"taken_at": "2024-04-01T08:30", "import_peak": "1", "import_off_peak": "5000"},
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_import_peak_error"' in html
    assert "The import peak register (1) is lower than the reading of" in html
    assert MeterReading.objects.filter(connection=connection, source=ReadingSource.SELF).count() == 0


def test_another_customers_connection_has_no_reading_page(portal, flat_provider):
    neighbour = ConnectionFactory(customer=CustomerFactory(provider=flat_provider), provider=flat_provider)

    assert portal.get(reverse("portal-reading", args=[neighbour.pk])).status_code == 404


def test_staff_have_no_self_service_pages(signed_in, super_creator, connection):
    staff = signed_in(super_creator, Role.SUPER_CREATOR)

    answers = [
        staff.get(reverse("portal-profile")).status_code,
        staff.get(reverse("portal-reading", args=[connection.pk])).status_code,
    ]

    assert answers == [403, 403]


# --- the staff's e-mail page ----------------------------------------------------------------------------


def test_staff_see_a_customers_emails_and_invite_them(signed_in, creator, flat_provider):
    walk_in = CustomerFactory(provider=flat_provider, user=None, name="Hina Khan", email="hina@example.com")
    staff = signed_in(creator, Role.INVOICE_CREATOR)
    page_url = f"{reverse('message-list')}?customer={walk_in.number}"

    before = staff.get(page_url).content.decode()
    invited = staff.post(reverse("customer-invite-page", args=[walk_in.pk]), {"next": page_url}, follow=True)

    html = invited.content.decode()
    assert "Invite to the portal" in before and "to hina@example.com" in before
    assert invited.redirect_chain == [(page_url, 302)]
    assert "An invitation to the portal is on its way to hina@example.com." in html
    assert "Invitation to sign in" in html and "Send the portal invitation again" in html
    assert Customer.objects.get(pk=walk_in.pk).user.email == "hina@example.com"


def test_a_refused_invitation_is_shown_with_its_reason(signed_in, creator, flat_provider):
    no_address = CustomerFactory(provider=flat_provider, user=None, email="")

    response = signed_in(creator, Role.INVOICE_CREATOR).post(
        reverse("customer-invite-page", args=[no_address.pk]), follow=True
    )

    assert f"Customer {no_address.number} has no e-mail address" in response.content.decode()
    assert not Message.objects.exists()


def test_an_auditor_sees_the_emails_but_may_not_invite(signed_in, flat_provider, connection, creator):
    auditor = signed_in(UserFactory(provider=flat_provider, roles=[Role.AUDITOR]), Role.AUDITOR)
    invoice_issue(connection=connection, period=JANUARY, created_by=creator)

    listed = auditor.get(f"{reverse('message-list')}?customer={connection.customer.number}")
    invite = auditor.post(reverse("customer-invite-page", args=[connection.customer.pk]))

    assert listed.status_code == 200 and "Bill issued" in listed.content.decode()
    assert "Invite to the portal" not in listed.content.decode()
    assert invite.status_code == 403


def test_the_dashboard_counts_the_emails_not_delivered(signed_in, super_creator, connection, creator):
    invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    Message.objects.filter(kind=MessageKind.BILL_ISSUED).update(status=MessageStatus.FAILED)

    html = signed_in(super_creator, Role.SUPER_CREATOR).get(reverse("dashboard")).content.decode()

    assert 'data-testid="kpi-failed-messages"><a href="/messages?status=failed">1</a>' in html
