import pytest
from django.test import Client

from accounts.models import User, UserRole
from accounts.roles import Role
from tests.factories import ProviderFactory, UserFactory

pytestmark = pytest.mark.django_db
USERS = "/admin/accounts/user/"
ADD = f"{USERS}add/"
NEW_PASSWORD = "violet-lantern-harbour-42"


def change_url(user: User) -> str:
    return f"{USERS}{user.pk}/change/"


def held_roles(user: User) -> set[str]:
    return set(UserRole.objects.filter(user=user).values_list("role", flat=True))


def signed_in(user: User, **client_options: object) -> Client:
    client = Client(**client_options)
    client.force_login(user)
    return client


def add_form(**fields: object) -> dict:
    """The add form as Django admin posts it: no password, plus the roles inline's management form."""
    return {
        "email": "new.person@disco.example",
        "name": "New Person",
        "phone": "0300-7654321",
        "address": "12 Mall Road",
        "designation": "Meter reader",
        "roles": ["Customer"],
        "usable_password": "false",
        "password1": "",
        "password2": "",
        "roles-TOTAL_FORMS": "0",
        "roles-INITIAL_FORMS": "0",
        "_save": "Save",
        **fields,
    }


def change_form(user: User, **fields: object) -> dict:
    """The change form of `user` as loaded, with `fields` changed (is_active="" unticks the box)."""
    held = len(user.role_names)
    return {
        "name": user.name,
        "phone": user.phone,
        "address": user.address,
        "designation": user.designation,
        "roles": user.role_names,
        "is_active": "on",
        "roles-TOTAL_FORMS": str(held),
        "roles-INITIAL_FORMS": str(held),
        "_save": "Save",
        **fields,
    }


@pytest.fixture
def provider_admin(admin_user):
    return admin_user


@pytest.fixture
def platform_admin(db):
    return UserFactory(provider=None, roles=[Role.ADMIN], is_superuser=True)


# What a provider's administrator can see


def test_provider_admin_sees_only_their_providers_users(provider_admin, provider, other_provider):
    UserFactory(provider=provider, email="mine@disco.example")
    UserFactory(provider=other_provider, email="theirs@other.example")
    UserFactory(provider=None, roles=[Role.ADMIN], email="platform@disco.example")

    response = signed_in(provider_admin).get(USERS)

    assert response.status_code == 200
    html = response.content.decode()
    assert "mine@disco.example" in html
    assert provider_admin.email in html
    assert "theirs@other.example" not in html
    assert "platform@disco.example" not in html


def test_provider_admin_list_filters_do_not_name_other_providers(provider_admin, provider):
    ProviderFactory(name="Zebra Electric Supply", code="ZES")

    response = signed_in(provider_admin).get(USERS)

    assert response.status_code == 200
    html = response.content.decode()
    assert provider.name in html
    assert html.count("Zebra Electric Supply") == 0  # nor in the "By provider" filter


def test_provider_admin_cannot_open_another_providers_user(provider_admin, other_provider):
    other = UserFactory(provider=other_provider, email="theirs@other.example", name="Hidden Person")

    response = signed_in(provider_admin).get(change_url(other))

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    page = signed_in(provider_admin).get(change_url(other), follow=True).content.decode()
    assert "Perhaps it was deleted?" in page
    assert "theirs@other.example" not in page
    assert "Hidden Person" not in page


def test_provider_admin_cannot_change_another_providers_user(provider_admin, other_provider):
    other = UserFactory(provider=other_provider, roles=[Role.CUSTOMER])

    response = signed_in(provider_admin).post(
        change_url(other), change_form(other, roles=["Admin"], is_active="")
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert held_roles(other) == {"Customer"}
    other.refresh_from_db()
    assert other.is_active is True


def test_provider_admin_cannot_set_another_providers_users_password(provider_admin, other_provider):
    other = UserFactory(provider=other_provider)

    response = signed_in(provider_admin).post(
        f"{USERS}{other.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 404
    other.refresh_from_db()
    assert other.check_password(NEW_PASSWORD) is False


# Adding users


def test_provider_admin_add_form_offers_no_provider_choice(provider_admin):
    response = signed_in(provider_admin).get(ADD)

    assert response.status_code == 200
    assert "provider" not in response.context["adminform"].form.fields
    assert {"email", "name", "roles", "usable_password", "password1"} <= set(
        response.context["adminform"].form.fields
    )


def test_provider_admin_adds_a_user_of_their_own_provider(provider_admin, provider):
    response = signed_in(provider_admin).post(ADD, add_form(roles=["Customer", "Auditor"]))

    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(email="new.person@disco.example")
    assert user.provider_id == provider.pk
    assert held_roles(user) == {"Customer", "Auditor"}
    assert user.has_usable_password() is False
    assert (user.phone, user.designation) == ("0300-7654321", "Meter reader")
    assert set(UserRole.objects.filter(user=user).values_list("assigned_by", flat=True)) == {
        provider_admin.pk
    }


def test_provider_admin_adds_an_administrator_of_their_own_provider(provider_admin, provider):
    response = signed_in(provider_admin).post(ADD, add_form(roles=["Admin"]))

    assert response.status_code == 302
    user = User.objects.get(email="new.person@disco.example")
    assert user.provider_id == provider.pk
    assert held_roles(user) == {"Admin"}
    assert user.is_staff is True
    assert user.has_usable_password() is False


def test_add_form_requires_a_role(provider_admin):
    response = signed_in(provider_admin).post(ADD, add_form(roles=[]))

    assert response.status_code == 200
    assert "roles" in response.context["adminform"].form.errors
    assert not User.objects.filter(email="new.person@disco.example").exists()


def test_platform_admin_adds_a_user_of_a_chosen_provider_with_a_password(platform_admin, other_provider):
    data = add_form(
        provider=other_provider.pk,
        roles=["Invoice_Creator"],
        usable_password="true",
        password1=NEW_PASSWORD,
        password2=NEW_PASSWORD,
    )

    response = signed_in(platform_admin).post(ADD, data)

    assert response.status_code == 302
    user = User.objects.get(email="new.person@disco.example")
    assert user.provider_id == other_provider.pk
    assert held_roles(user) == {"Invoice_Creator"}
    assert user.check_password(NEW_PASSWORD)


def test_platform_admin_must_choose_a_provider_for_a_non_admin_user(platform_admin):
    response = signed_in(platform_admin).post(ADD, add_form(provider="", roles=["Auditor"]))

    assert response.status_code == 200
    assert "choose the provider" in str(response.context["adminform"].form.errors["roles"])
    assert not User.objects.filter(email="new.person@disco.example").exists()


def test_add_form_refuses_an_email_taken_in_another_case(platform_admin, provider):
    UserFactory(provider=provider, email="new.person@disco.example")

    response = signed_in(platform_admin).post(
        ADD, add_form(email="New.Person@DISCO.example", provider=provider.pk)
    )

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert User.objects.filter(email="new.person@disco.example").count() == 1


# Changing users


def test_change_form_checkboxes_set_the_users_roles(provider_admin, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])

    response = signed_in(provider_admin).post(
        change_url(user), change_form(user, roles=["Customer", "Super_Creator"])
    )

    assert response.status_code == 302
    assert held_roles(user) == {"Customer", "Super_Creator"}
    assert UserRole.objects.get(user=user, role=Role.SUPER_CREATOR).assigned_by == provider_admin


def test_change_form_shows_the_roles_held_as_ticked(provider_admin, provider):
    user = UserFactory(provider=provider, roles=[Role.AUDITOR, Role.CUSTOMER])

    response = signed_in(provider_admin).get(change_url(user))

    assert response.status_code == 200
    assert response.context["adminform"].form["roles"].value() == ["Customer", "Auditor"]


def test_change_form_ticking_admin_gives_django_admin_access(provider_admin, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER])

    signed_in(provider_admin).post(change_url(user), change_form(user, roles=["Customer", "Admin"]))

    user.refresh_from_db()
    assert held_roles(user) == {"Customer", "Admin"}
    assert user.is_staff is True


def test_change_form_refuses_unticking_every_role(provider_admin, provider):
    user = UserFactory(provider=provider, roles=[Role.CUSTOMER, Role.AUDITOR])

    response = signed_in(provider_admin).post(change_url(user), change_form(user, roles=[]))

    assert response.status_code == 200
    assert "roles" in response.context["adminform"].form.errors
    assert held_roles(user) == {"Customer", "Auditor"}


def test_change_form_unticking_active_deactivates_the_user(provider_admin, provider):
    user = UserFactory(provider=provider)

    response = signed_in(provider_admin).post(change_url(user), change_form(user, is_active=""))

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.is_active is False


def test_admin_deactivating_themselves_in_django_admin_is_refused_without_a_server_error(provider_admin):
    client = signed_in(provider_admin, raise_request_exception=False)

    response = client.post(change_url(provider_admin), change_form(provider_admin, is_active=""), follow=True)

    assert response.status_code == 200
    assert "You cannot deactivate your own account." in response.content.decode()
    provider_admin.refresh_from_db()
    assert provider_admin.is_active is True


# Platform administrators and everyone else


def test_platform_admin_sees_users_of_every_provider(platform_admin, provider, other_provider):
    UserFactory(provider=provider, email="first@disco.example")
    UserFactory(provider=other_provider, email="second@other.example")

    response = signed_in(platform_admin).get(USERS)

    assert response.status_code == 200
    html = response.content.decode()
    assert "first@disco.example" in html
    assert "second@other.example" in html


def test_platform_admin_opens_any_providers_user(platform_admin, other_provider):
    other = UserFactory(provider=other_provider, email="second@other.example")

    response = signed_in(platform_admin).get(change_url(other))

    assert response.status_code == 200
    assert "second@other.example" in response.content.decode()


@pytest.mark.parametrize("path", ["/admin/", USERS, ADD])
def test_customer_is_sent_to_the_admin_login(provider, path):
    customer = UserFactory(provider=provider, roles=[Role.CUSTOMER])

    response = signed_in(customer).get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


def test_customer_cannot_add_a_user_through_django_admin(provider):
    customer = UserFactory(provider=provider, roles=[Role.CUSTOMER])

    response = signed_in(customer).post(ADD, add_form(roles=["Admin"]))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert not User.objects.filter(email="new.person@disco.example").exists()
