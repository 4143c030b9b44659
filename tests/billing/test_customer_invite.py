"""customer_invite: a customer's login made from their e-mail address (no password), and an invitation
with a one-time link to set it, in the customer's language; the refusals, the roles that may invite,
and another provider's customer not found."""

import re

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.utils.http import urlsafe_base64_decode

from accounts.models import Message, MessageKind, MessageStatus, User
from accounts.roles import Role
from billing.models import Customer, Language
from billing.services import EmailMissing, customer_invite
from config.errors import Conflict
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://[^/\s\"]+/set-password/([^/\s\"]+)/([^/\s\"]+)")


@pytest.fixture
def clerk(provider):
    return UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR])


@pytest.fixture
def walk_in(provider):
    """A customer with an e-mail address and no login yet."""
    return CustomerFactory(provider=provider, user=None, name="Bilal Ahmed", email="bilal@example.com")


def test_inviting_a_customer_without_a_login_makes_one_and_emails_the_link(
    mailbox, walk_in, clerk, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = customer_invite(customer=walk_in, invited_by=clerk)

    walk_in.refresh_from_db()
    login = walk_in.user
    (received,) = mailbox.received
    uid, token = LINK.search(received.text).groups()
    assert urlsafe_base64_decode(uid).decode() == str(login.pk)
    assert (login.email, login.name, login.provider, login.role_names) == (
        "bilal@example.com",
        "Bilal Ahmed",
        walk_in.provider,
        [Role.CUSTOMER],
    )
    assert not login.has_usable_password()
    assert default_token_generator.check_token(login, token)
    assert (message.kind, message.user, message.recipient) == (
        MessageKind.INVITATION,
        login,
        "bilal@example.com",
    )
    assert Message.objects.get().status == MessageStatus.SENT
    assert received.rcpt_tos == ["bilal@example.com"]
    assert received.subject == f"{walk_in.provider.name}: set your password to see your bills online"
    assert "Then sign in with your e-mail address, bilal@example.com." in received.text
    assert "Set your password" in received.html


def test_an_urdu_speaking_customer_is_invited_in_urdu_right_to_left(
    mailbox, walk_in, clerk, django_capture_on_commit_callbacks
):
    walk_in.preferred_language = Language.URDU
    walk_in.save()

    with django_capture_on_commit_callbacks(execute=True):
        customer_invite(customer=walk_in, invited_by=clerk)

    (received,) = mailbox.received
    assert received.subject == f"{walk_in.provider.name}: اپنا پاس ورڈ بنائیں اور اپنے بل آن لائن دیکھیں"
    assert received.text.startswith("السلام علیکم Bilal Ahmed،")
    assert '<html lang="ur" dir="rtl">' in received.html
    assert "اپنا پاس ورڈ بنائیں" in received.html
    assert received.message["Content-Language"] == "ur"
    assert Message.objects.get().language == "ur"


def test_a_customer_with_a_login_is_invited_again_at_its_address(
    mailbox, provider, clerk, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(provider=provider)  # with a login, from the factory
    customer.email = "bills-only@example.com"  # where bills go; the login keeps its own address
    customer.save()

    with django_capture_on_commit_callbacks(execute=True):
        customer_invite(customer=customer, invited_by=clerk)

    (received,) = mailbox.received
    assert received.rcpt_tos == [customer.user.email]
    assert User.objects.filter(customer__isnull=False).count() == 1


def test_a_customer_without_an_email_address_cannot_be_invited(provider, clerk):
    customer = CustomerFactory(provider=provider, user=None, email="")

    with pytest.raises(EmailMissing) as refused:
        customer_invite(customer=customer, invited_by=clerk)

    assert (
        refused.value.detail
        == f"Customer {customer.number} has no e-mail address: add one, then invite them."
    )
    assert refused.value.field == "email"
    assert not Message.objects.exists()


def test_an_address_another_account_uses_is_a_conflict_and_nothing_changes(provider, walk_in, clerk):
    UserFactory(provider=provider, email="bilal@example.com", roles=[Role.INVOICE_CREATOR])

    with pytest.raises(Conflict) as refused:
        customer_invite(customer=walk_in, invited_by=clerk)

    assert refused.value.status == 409
    assert refused.value.detail.startswith(
        "The e-mail address bilal@example.com is already used by another account"
    )
    assert Customer.objects.get(pk=walk_in.pk).user is None
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.ADMIN, 202),
        (Role.SUPER_CREATOR, 202),
        (Role.INVOICE_CREATOR, 202),
        (Role.AUDITOR, 403),
        (Role.CUSTOMER, 403),
    ],
)
def test_which_roles_may_invite_through_the_api(as_role, provider, walk_in, role, status):
    caller = as_role(UserFactory(provider=provider, roles=[role]), role)

    response = caller.post(f"/api/customers/{walk_in.pk}/invite")

    assert response.status_code == status
    assert Message.objects.filter(kind=MessageKind.INVITATION).count() == (1 if status == 202 else 0)


def test_the_api_answers_with_the_login_and_the_message_and_refusals_with_their_reasons(
    as_role, provider, walk_in, clerk
):
    caller = as_role(clerk, Role.INVOICE_CREATOR)
    no_address = CustomerFactory(provider=provider, user=None, email="")

    invited = caller.post(f"/api/customers/{walk_in.pk}/invite")
    refused = caller.post(f"/api/customers/{no_address.pk}/invite")

    body = invited.json()
    assert (body["customerId"], body["userId"]) == (
        walk_in.number,
        Customer.objects.get(pk=walk_in.pk).user_id,
    )
    assert {key: body["message"][key] for key in ("kind", "recipient", "language", "status")} == {
        "kind": "invitation",
        "recipient": "bilal@example.com",
        "language": "en",
        "status": "queued",
    }
    assert (refused.status_code, refused.json()["code"], refused.json()["fields"]) == (
        400,
        "email_missing",
        {"email": [f"Customer {no_address.number} has no e-mail address: add one, then invite them."]},
    )


def test_another_providers_customer_is_not_found(as_role, other_provider, clerk):
    foreign = CustomerFactory(provider=other_provider, user=None, email="someone@example.com")

    response = as_role(clerk, Role.INVOICE_CREATOR).post(f"/api/customers/{foreign.pk}/invite")

    assert response.status_code == 404
    assert Customer.objects.get(pk=foreign.pk).user is None
