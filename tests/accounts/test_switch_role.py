import jwt
import pytest

from accounts.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SWITCH = "/api/auth/switch-role"


def test_switch_role_issues_tokens_for_another_held_role(as_role, provider):
    user = UserFactory(provider=provider, roles=[Role.SUPER_CREATOR, Role.AUDITOR])
    client = as_role(user, Role.SUPER_CREATOR)

    response = client.post(SWITCH, {"newRole": "Auditor"}, format="json")

    assert response.status_code == 200
    assert response.json()["selectedRole"] == "Auditor"
    claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
    assert (claims["role"], claims["provider_id"], claims["user_id"]) == (
        "Auditor",
        provider.pk,
        str(user.pk),
    )
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert client.get("/api/auth/me").json()["selectedRole"] == "Auditor"


def test_switch_role_refuses_a_role_not_held(as_role, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])

    response = as_role(user, Role.CUSTOMER).post(SWITCH, {"newRole": "Admin"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "role_not_held"


def test_switch_role_needs_a_valid_token(api):
    response = api.post(SWITCH, {"newRole": "Admin"}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_switch_role_refuses_an_unknown_role_name(as_role, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])

    response = as_role(user, Role.CUSTOMER).post(SWITCH, {"newRole": "Root"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["newRole"]


def test_a_token_signed_with_another_key_is_refused(api, provider):
    user = UserFactory(provider=provider, roles=[Role.ADMIN])
    forged = jwt.encode(
        {
            "user_id": str(user.pk),
            "role": "Admin",
            "provider_id": provider.pk,
            "token_type": "access",
            "exp": 4102444800,
            "jti": "x",
        },
        "a-key-that-is-not-the-servers-signing-key",
        algorithm="HS256",
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")

    response = api.get("/api/auth/me")

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"
