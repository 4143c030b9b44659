import pytest

from accounts.models import User, UserRole
from accounts.roles import Role
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
USERS, ASSIGN, ME = "/api/admin/users", "/api/admin/users/roles", "/api/auth/me"
NEW_PASSWORD = "violet-lantern-harbour-42"


def user_url(user: User) -> str:
    return f"{USERS}/{user.pk}"


def roles_url(user: User) -> str:
    return f"{USERS}/{user.pk}/roles"


def role_url(user: User, role: str) -> str:
    return f"{USERS}/{user.pk}/roles/{role}"


def held_roles(user: User) -> set[str]:
    return set(UserRole.objects.filter(user=user).values_list("role", flat=True))


def new_user(**fields: object) -> dict:
    return {"name": "Amina Khan", "email": "amina@disco.example", **fields}


@pytest.fixture
def platform_admin(db):
    return UserFactory(provider=None, roles=[Role.ADMIN])


# Creating users


def test_create_user_returns_the_user_with_roles_in_role_order(admin_api, provider):
    body = new_user(password=NEW_PASSWORD, phoneNumber="0300-1234567", roles=["Auditor", "Invoice_Creator"])

    response = admin_api.post(USERS, body, format="json")

    assert response.status_code == 201
    data = response.json()
    user = User.objects.get(email="amina@disco.example")
    assert data["userId"] == user.pk
    assert data["roles"] == ["Invoice_Creator", "Auditor"]
    assert data["providerId"] == provider.pk
    assert data["phoneNumber"] == "0300-1234567"
    assert data["isActive"] is True
    assert user.provider_id == provider.pk
    assert held_roles(user) == {"Invoice_Creator", "Auditor"}


def test_create_user_stores_the_password_hashed(admin_api):
    admin_api.post(USERS, new_user(password=NEW_PASSWORD), format="json")

    user = User.objects.get(email="amina@disco.example")
    assert user.password != NEW_PASSWORD
    assert NEW_PASSWORD not in user.password
    assert user.check_password(NEW_PASSWORD)


def test_create_user_records_who_assigned_the_roles(admin_api, admin_user):
    admin_api.post(USERS, new_user(roles=["Auditor"]), format="json")

    assert UserRole.objects.get(user__email="amina@disco.example").assigned_by == admin_user


def test_create_user_without_roles_makes_a_customer(admin_api):
    response = admin_api.post(USERS, new_user(password=NEW_PASSWORD), format="json")

    assert response.status_code == 201
    assert response.json()["roles"] == ["Customer"]
    assert held_roles(User.objects.get(email="amina@disco.example")) == {"Customer"}


def test_create_user_without_a_password_makes_one_who_cannot_sign_in(admin_api, api):
    response = admin_api.post(USERS, new_user(), format="json")

    assert response.status_code == 201
    assert User.objects.get(email="amina@disco.example").has_usable_password() is False
    login = api.post(
        "/api/auth/login", {"email": "amina@disco.example", "password": "guess-guess-9"}, format="json"
    )
    assert login.status_code == 401


def test_create_user_with_the_admin_role_gives_django_admin_access(admin_api):
    admin_api.post(USERS, new_user(roles=["Admin"]), format="json")

    assert User.objects.get(email="amina@disco.example").is_staff is True


def test_create_user_stores_the_email_lower_case(admin_api):
    response = admin_api.post(USERS, new_user(email="Amina.Khan@DISCO.example"), format="json")

    assert response.status_code == 201
    assert response.json()["email"] == "amina.khan@disco.example"
    assert User.objects.filter(email="amina.khan@disco.example").exists()


def test_create_user_in_another_provider_is_not_found(admin_api, other_provider):
    response = admin_api.post(USERS, new_user(providerId=other_provider.pk), format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not User.objects.filter(email="amina@disco.example").exists()


def test_create_user_naming_the_admins_own_provider_succeeds(admin_api, provider):
    response = admin_api.post(USERS, new_user(providerId=provider.pk), format="json")

    assert response.status_code == 201
    assert response.json()["providerId"] == provider.pk
    assert User.objects.get(email="amina@disco.example").provider_id == provider.pk


def test_platform_admin_creates_a_user_in_any_provider(as_role, platform_admin, provider, other_provider):
    client = as_role(platform_admin, Role.ADMIN)

    response = client.post(USERS, new_user(providerId=other_provider.pk, roles=["Auditor"]), format="json")

    assert response.status_code == 201
    assert response.json()["providerId"] == other_provider.pk
    assert User.objects.get(email="amina@disco.example").provider_id == other_provider.pk


def test_platform_admin_must_name_a_provider_for_a_non_admin_user(as_role, platform_admin):
    response = as_role(platform_admin, Role.ADMIN).post(USERS, new_user(roles=["Auditor"]), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "provider_required"
    assert "providerId" in response.json()["fields"]
    assert not User.objects.filter(email="amina@disco.example").exists()


def test_platform_admin_may_create_another_platform_admin(as_role, platform_admin):
    response = as_role(platform_admin, Role.ADMIN).post(USERS, new_user(roles=["Admin"]), format="json")

    assert response.status_code == 201
    assert response.json()["providerId"] is None
    assert response.json()["roles"] == ["Admin"]


def test_create_user_with_a_platform_admins_unknown_provider_is_not_found(as_role, platform_admin):
    response = as_role(platform_admin, Role.ADMIN).post(USERS, new_user(providerId=999_999), format="json")

    assert response.status_code == 404
    assert not User.objects.filter(email="amina@disco.example").exists()


def test_create_user_refuses_an_email_taken_in_any_case(admin_api, other_provider):
    UserFactory(provider=other_provider, email="amina@disco.example")

    response = admin_api.post(USERS, new_user(email="AMINA@Disco.Example"), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    assert "email" in response.json()["fields"]
    assert User.objects.filter(email="amina@disco.example").count() == 1


def test_create_user_refuses_a_weak_password(admin_api):
    response = admin_api.post(USERS, new_user(password="12345"), format="json")

    assert response.status_code == 400
    assert response.json()["fields"]["password"]
    assert not User.objects.filter(email="amina@disco.example").exists()


def test_create_user_refuses_an_unknown_role(admin_api):
    response = admin_api.post(USERS, new_user(roles=["Customer", "Janitor"]), format="json")

    assert response.status_code == 400
    assert "roles" in response.json()["fields"]
    assert not User.objects.filter(email="amina@disco.example").exists()


@pytest.mark.parametrize("missing", ["name", "email"])
def test_create_user_requires_name_and_email(admin_api, missing):
    body = new_user()
    del body[missing]

    response = admin_api.post(USERS, body, format="json")

    assert response.status_code == 400
    assert list(response.json()["fields"]) == [missing]
    assert User.objects.count() == 1  # the admin only


# Assigning roles


def test_assign_role_adds_it(admin_api, admin_user, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER])

    response = admin_api.post(ASSIGN, {"userId": user.pk, "role": "Auditor"}, format="json")

    assert response.status_code == 201
    assert response.json() == {"userId": user.pk, "roles": ["Customer", "Auditor"]}
    assert held_roles(user) == {"Customer", "Auditor"}
    assert UserRole.objects.get(user=user, role=Role.AUDITOR).assigned_by == admin_user


def test_assign_role_already_held_changes_nothing(admin_api, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])
    before = UserRole.objects.get(user=user, role=Role.AUDITOR)

    response = admin_api.post(ASSIGN, {"userId": user.pk, "role": "Auditor"}, format="json")

    assert response.status_code == 200
    assert response.json() == {"userId": user.pk, "roles": ["Customer", "Auditor"]}
    assert list(UserRole.objects.filter(user=user, role=Role.AUDITOR)) == [before]
    assert held_roles(user) == {"Customer", "Auditor"}


def test_assign_admin_role_gives_django_admin_access(admin_api, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER])

    admin_api.post(ASSIGN, {"userId": user.pk, "role": "Admin"}, format="json")

    user.refresh_from_db()
    assert user.is_staff is True


def test_assign_role_to_another_providers_user_is_not_found(admin_api, other_provider):
    user = UserFactory(provider=other_provider, roles=[Role.CUSTOMER])

    response = admin_api.post(ASSIGN, {"userId": user.pk, "role": "Auditor"}, format="json")

    assert response.status_code == 404
    assert held_roles(user) == {"Customer"}


def test_assign_unknown_role_is_refused(admin_api, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER])

    response = admin_api.post(ASSIGN, {"userId": user.pk, "role": "Janitor"}, format="json")

    assert response.status_code == 400
    assert "role" in response.json()["fields"]
    assert held_roles(user) == {"Customer"}


def test_assign_a_provider_role_to_a_platform_admin_is_refused(as_role, platform_admin):
    other_platform_admin = UserFactory(provider=None, roles=[Role.ADMIN])

    response = as_role(platform_admin, Role.ADMIN).post(
        ASSIGN, {"userId": other_platform_admin.pk, "role": "Auditor"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "provider_required"
    assert held_roles(other_platform_admin) == {"Admin"}


# Reading roles


def test_get_roles_returns_a_bare_list_in_role_order(admin_api, provider):
    user = UserFactory(provider=provider, roles=[Role.AUDITOR, Role.CUSTOMER])

    response = admin_api.get(roles_url(user))

    assert response.status_code == 200
    assert response.json() == ["Customer", "Auditor"]


def test_get_roles_of_another_providers_user_is_not_found(admin_api, other_provider):
    user = UserFactory(provider=other_provider, roles=[Role.AUDITOR])

    response = admin_api.get(roles_url(user))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert set(response.json()) == {"detail", "code"}
    assert "Auditor" not in str(response.json())


def test_get_roles_of_an_unknown_user_is_not_found(admin_api):
    response = admin_api.get(f"{USERS}/999999/roles")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# Removing roles


def test_remove_role_returns_the_remaining_roles(admin_api, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])

    response = admin_api.delete(role_url(user, "Auditor"))

    assert response.status_code == 200
    assert response.json() == {"userId": user.pk, "roles": ["Customer"]}
    assert held_roles(user) == {"Customer"}


def test_remove_admin_role_takes_away_django_admin_access(admin_api, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.ADMIN])

    admin_api.delete(role_url(user, "Admin"))

    user.refresh_from_db()
    assert user.is_staff is False


def test_remove_role_refuses_the_last_role(admin_api, provider):
    user = UserFactory(provider=provider, roles=[Role.AUDITOR])

    response = admin_api.delete(role_url(user, "Auditor"))

    assert response.status_code == 409
    assert response.json()["code"] == "role_last"
    assert "Cannot remove the last role" in response.json()["detail"]
    assert held_roles(user) == {"Auditor"}


def test_remove_role_not_held_is_not_found(admin_api, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])

    response = admin_api.delete(role_url(user, "Super_Creator"))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert held_roles(user) == {"Customer", "Auditor"}


def test_remove_unknown_role_is_refused(admin_api, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])

    response = admin_api.delete(role_url(user, "Janitor"))

    assert response.status_code == 400
    assert "role" in response.json()["fields"]
    assert held_roles(user) == {"Customer", "Auditor"}


def test_remove_role_of_another_providers_user_is_not_found(admin_api, other_provider):
    user = UserFactory(provider=other_provider, roles=[Role.CUSTOMER, Role.AUDITOR])

    response = admin_api.delete(role_url(user, "Auditor"))

    assert response.status_code == 404
    assert held_roles(user) == {"Customer", "Auditor"}


# Editing and listing users


def test_patch_is_active_false_deactivates_the_user(admin_api, provider):
    user = UserFactory(provider=provider)

    response = admin_api.patch(user_url(user), {"isActive": False}, format="json")

    assert response.status_code == 200
    assert response.json()["isActive"] is False
    user.refresh_from_db()
    assert user.is_active is False


def test_patch_updates_the_editable_fields(admin_api, provider):
    user = UserFactory(provider=provider, name="Old Name")

    response = admin_api.patch(
        user_url(user),
        {"name": "New Name", "phoneNumber": "042-111", "designation": "Lineman"},
        format="json",
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.name, user.phone, user.designation) == ("New Name", "042-111", "Lineman")


def test_admin_cannot_deactivate_themselves(admin_api, admin_user):
    response = admin_api.patch(user_url(admin_user), {"isActive": False}, format="json")

    assert response.status_code == 400
    assert "isActive" in response.json()["fields"]
    admin_user.refresh_from_db()
    assert admin_user.is_active is True


def test_patch_another_providers_user_is_not_found(admin_api, other_provider):
    user = UserFactory(provider=other_provider)

    response = admin_api.patch(user_url(user), {"isActive": False}, format="json")

    assert response.status_code == 404
    user.refresh_from_db()
    assert user.is_active is True


def test_get_another_providers_user_is_not_found(admin_api, other_provider):
    user = UserFactory(provider=other_provider, email="secret@other.example")

    response = admin_api.get(user_url(user))

    assert response.status_code == 404
    assert "secret@other.example" not in response.content.decode()


def test_list_users_shows_only_the_callers_provider(admin_api, admin_user, provider, other_provider):
    mine = UserFactory(provider=provider, email="mine@disco.example")
    UserFactory(provider=other_provider, email="theirs@other.example")
    UserFactory(provider=None, roles=[Role.ADMIN], email="platform@disco.example")

    response = admin_api.get(USERS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert {row["userId"] for row in body["results"]} == {admin_user.pk, mine.pk}


def test_platform_admin_lists_users_of_every_provider(as_role, platform_admin, provider, other_provider):
    UserFactory(provider=provider, email="mine@disco.example")
    UserFactory(provider=other_provider, email="theirs@other.example")

    response = as_role(platform_admin, Role.ADMIN).get(USERS)

    assert response.status_code == 200
    assert {row["email"] for row in response.json()["results"]} == {
        platform_admin.email,
        "mine@disco.example",
        "theirs@other.example",
    }


# Who may use the admin API


def test_admin_acting_as_customer_may_not_administer_users(as_role, provider):
    user = UserFactory(provider=provider, roles=[Role.ADMIN, Role.CUSTOMER])
    client = as_role(user, Role.CUSTOMER)

    create = client.post(USERS, new_user(), format="json")
    roles = client.get(roles_url(user))

    assert create.status_code == 403
    assert create.json()["code"] == "permission_denied"
    assert roles.status_code == 403
    assert not User.objects.filter(email="amina@disco.example").exists()


@pytest.mark.parametrize("role", [Role.INVOICE_CREATOR, Role.SUPER_CREATOR, Role.AUDITOR, Role.CUSTOMER])
def test_non_admin_roles_may_not_create_users(as_role, provider, role):
    user = UserFactory(provider=provider, roles=[role])

    response = as_role(user, role).post(USERS, new_user(), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not User.objects.filter(email="amina@disco.example").exists()


@pytest.mark.parametrize("role", [Role.INVOICE_CREATOR, Role.SUPER_CREATOR, Role.AUDITOR, Role.CUSTOMER])
def test_non_admin_roles_may_not_read_change_or_list_users(as_role, provider, role):
    user = UserFactory(provider=provider, roles=[role])
    target = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])
    client = as_role(user, role)

    answers = [
        client.get(USERS).status_code,
        client.get(user_url(target)).status_code,
        client.patch(user_url(target), {"isActive": False}, format="json").status_code,
        client.get(roles_url(target)).status_code,
        client.post(ASSIGN, {"userId": target.pk, "role": "Admin"}, format="json").status_code,
        client.delete(role_url(target, "Auditor")).status_code,
    ]

    assert answers == [403] * 6
    assert held_roles(target) == {"Customer", "Auditor"}
    target.refresh_from_db()
    assert target.is_active is True


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", USERS), ("post", USERS), ("post", ASSIGN), ("get", f"{USERS}/1"), ("get", f"{USERS}/1/roles")],
)
def test_anonymous_callers_are_not_authenticated(api, method, path):
    response = getattr(api, method)(path)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_anonymous_caller_cannot_remove_a_role(api, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])

    response = api.delete(role_url(user, "Auditor"))

    assert response.status_code == 401
    assert held_roles(user) == {"Customer", "Auditor"}


# Losing access at once


def test_removed_role_stops_the_users_token_at_once(admin_api, as_role, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])
    client = as_role(user, Role.AUDITOR)
    assert client.get(ME).status_code == 200

    assert admin_api.delete(role_url(user, "Auditor")).status_code == 200
    response = client.get(ME)

    assert response.status_code == 401
    assert response.json()["code"] == "role_revoked"


def test_remaining_role_token_keeps_working_after_another_role_is_removed(admin_api, as_role, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])
    client = as_role(user, Role.CUSTOMER)

    admin_api.delete(role_url(user, "Auditor"))
    response = client.get(ME)

    assert response.status_code == 200
    assert response.json()["roles"] == ["Customer"]


def test_deactivation_stops_the_users_token_at_once(admin_api, as_role, provider):
    user = UserFactory(provider=provider, roles=[Role.AUDITOR])
    client = as_role(user, Role.AUDITOR)
    assert client.get(ME).status_code == 200

    assert admin_api.patch(user_url(user), {"isActive": False}, format="json").status_code == 200
    response = client.get(ME)

    assert response.status_code == 401
    assert response.json()["code"] == "user_inactive"


def test_deactivated_user_cannot_sign_in(admin_api, api, provider):
    user = UserFactory(provider=provider, email="leaver@disco.example", roles=[Role.AUDITOR])

    admin_api.patch(user_url(user), {"isActive": False}, format="json")
    response = api.post(
        "/api/auth/login", {"email": "leaver@disco.example", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
