import pytest

from accounts.models import RoleSelectionTicket
from accounts.roles import Role
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
LOGIN = "/api/auth/login"


def test_login_with_one_role_returns_tokens_for_that_role(api, provider):
    user = UserFactory(provider=provider, email="clerk@disco.example", roles=[Role.INVOICE_CREATOR])

    response = api.post(LOGIN, {"email": "Clerk@DISCO.example", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["userId"] == user.pk
    assert body["roles"] == ["Invoice_Creator"]
    assert body["selectedRole"] == "Invoice_Creator"
    assert body["requiresRoleSelection"] is False
    assert body["providerId"] == provider.pk
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    me = api.get("/api/auth/me").json()
    assert me["selectedRole"] == "Invoice_Creator"
    assert me["userId"] == user.pk


def test_login_with_several_roles_returns_a_ticket_and_no_token(api, provider):
    UserFactory(provider=provider, email="multi@disco.example", roles=[Role.ADMIN, Role.CUSTOMER])

    response = api.post(LOGIN, {"email": "multi@disco.example", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["token"] is None
    assert body["refreshToken"] is None
    assert body["selectedRole"] is None
    assert body["requiresRoleSelection"] is True
    assert body["roles"] == ["Customer", "Admin"]
    assert len(body["selectionTicket"]) >= 40
    assert RoleSelectionTicket.objects.get().digest != body["selectionTicket"]  # only a hash is stored


def test_wrong_password_unknown_email_and_inactive_account_answer_alike(api, provider):
    UserFactory(provider=provider, email="known@disco.example")
    UserFactory(provider=provider, email="gone@disco.example", is_active=False)

    attempts = [
        {"email": "known@disco.example", "password": "not-the-password"},
        {"email": "nobody@disco.example", "password": PASSWORD},
        {"email": "gone@disco.example", "password": PASSWORD},
    ]
    answers = [api.post(LOGIN, attempt, format="json") for attempt in attempts]

    assert {a.status_code for a in answers} == {401}
    assert {(a.json()["detail"], a.json()["code"]) for a in answers} == {
        ("The email or password is not correct.", "invalid_credentials")
    }


def test_login_refuses_a_missing_password_with_a_field_error(api):
    response = api.post(LOGIN, {"email": "someone@disco.example"}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"password": ["This field is required."]}


def test_login_is_throttled_per_account(api, provider, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login": "100/min", "login_email": "3/min"},
    }
    UserFactory(provider=provider, email="target@disco.example")
    wrong = {"email": "target@disco.example", "password": "guess-guess-guess"}

    answers = [api.post(LOGIN, wrong, format="json").status_code for _ in range(4)]
    right_password_too_late = api.post(LOGIN, {**wrong, "password": PASSWORD}, format="json")

    assert answers == [401, 401, 401, 429]
    assert right_password_too_late.status_code == 429
    assert right_password_too_late.json()["code"] == "throttled"
    assert "seconds" in right_password_too_late.json()["detail"]


def test_login_is_throttled_per_address_across_accounts(api, provider, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login": "2/min", "login_email": "9/min"},
    }
    codes = [
        api.post(
            LOGIN, {"email": f"u{n}@disco.example", "password": "x-x-x-x-x-x"}, format="json"
        ).status_code
        for n in range(3)
    ]

    assert codes == [401, 401, 429]
