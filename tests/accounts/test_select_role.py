from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import RoleSelectionTicket
from accounts.roles import Role
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
SELECT = "/api/auth/select-role"


@pytest.fixture
def multi_role_user(provider):
    return UserFactory(provider=provider, email="multi@disco.example", roles=[Role.AUDITOR, Role.CUSTOMER])


@pytest.fixture
def ticket(api, multi_role_user) -> str:
    body = api.post("/api/auth/login", {"email": multi_role_user.email, "password": PASSWORD}, format="json")
    return body.json()["selectionTicket"]


def test_select_role_with_the_login_ticket_issues_tokens_for_that_role(api, ticket, multi_role_user):
    response = api.post(SELECT, {"selectionTicket": ticket, "selectedRole": "Auditor"}, format="json")

    assert response.status_code == 200
    assert response.json()["selectedRole"] == "Auditor"
    assert response.json()["requiresRoleSelection"] is False
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert api.get("/api/auth/me").json() == {
        "userId": multi_role_user.pk,
        "name": multi_role_user.name,
        "email": "multi@disco.example",
        "providerId": multi_role_user.provider_id,
        "roles": ["Customer", "Auditor"],
        "selectedRole": "Auditor",
    }


def test_select_role_by_user_id_alone_mints_nothing(api, multi_role_user):
    """The original system issued a token to anyone who named a userId; here the ticket is required."""
    response = api.post(SELECT, {"userId": multi_role_user.pk, "selectedRole": "Auditor"}, format="json")

    assert response.status_code == 400
    assert "token" not in response.json()
    assert response.json()["fields"] == {"selectionTicket": ["This field is required."]}


def test_select_role_refuses_a_forged_ticket(api, multi_role_user):
    response = api.post(
        SELECT,
        {"selectionTicket": "x" * 43, "selectedRole": "Auditor", "userId": multi_role_user.pk},
        format="json",
    )

    assert response.status_code == 401
    assert response.json()["code"] == "ticket_invalid"


def test_a_ticket_is_good_for_one_selection_only(api, ticket):
    first = api.post(SELECT, {"selectionTicket": ticket, "selectedRole": "Auditor"}, format="json")
    second = api.post(SELECT, {"selectionTicket": ticket, "selectedRole": "Customer"}, format="json")

    assert first.status_code == 200
    assert second.status_code == 401
    assert second.json() == {
        "detail": "This role selection has expired or was already used. Sign in again.",
        "code": "ticket_invalid",
    }


def test_an_expired_ticket_is_refused(api, ticket):
    RoleSelectionTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = api.post(SELECT, {"selectionTicket": ticket, "selectedRole": "Auditor"}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "ticket_invalid"


def test_a_ticket_of_another_user_id_is_refused(api, ticket, provider):
    someone_else = UserFactory(provider=provider, roles=[Role.ADMIN])

    response = api.post(
        SELECT,
        {"selectionTicket": ticket, "selectedRole": "Auditor", "userId": someone_else.pk},
        format="json",
    )

    assert response.status_code == 401
    assert response.json()["code"] == "ticket_invalid"


def test_a_role_the_user_does_not_hold_is_refused_and_the_ticket_stays_usable(api, ticket):
    refused = api.post(SELECT, {"selectionTicket": ticket, "selectedRole": "Admin"}, format="json")
    accepted = api.post(SELECT, {"selectionTicket": ticket, "selectedRole": "Customer"}, format="json")

    assert refused.status_code == 403
    assert refused.json()["code"] == "role_not_held"
    assert "Customer, Auditor" in refused.json()["detail"]
    assert accepted.status_code == 200


def test_a_ticket_of_a_user_deactivated_since_login_is_refused(api, ticket, multi_role_user):
    multi_role_user.is_active = False
    multi_role_user.save()

    response = api.post(SELECT, {"selectionTicket": ticket, "selectedRole": "Auditor"}, format="json")

    assert response.status_code == 401
