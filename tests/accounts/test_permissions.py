import pytest

from accounts.permissions import POLICY, role_allows
from accounts.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_role_has_a_policy_entry():
    assert set(POLICY) == set(Role)


def test_a_user_acting_as_customer_does_not_get_their_admin_permissions(provider):
    user = UserFactory(provider=provider, roles=[Role.ADMIN, Role.CUSTOMER])

    assert role_allows(Role.ADMIN, "accounts.add_user", user=user)
    assert not role_allows(Role.CUSTOMER, "accounts.add_user", user=user)


def test_only_a_platform_administrator_may_create_providers(provider):
    provider_admin = UserFactory(provider=provider, roles=[Role.ADMIN])
    platform_admin = UserFactory(provider=None, roles=[Role.ADMIN])

    assert not role_allows(Role.ADMIN, "providers.add_provider", user=provider_admin)
    assert role_allows(Role.ADMIN, "providers.add_provider", user=platform_admin)


def test_django_admin_sessions_act_with_every_held_role(provider):
    user = UserFactory(provider=provider, roles=[Role.ADMIN, Role.CUSTOMER])

    assert user.has_perm("accounts.change_user")
    assert user.has_module_perms("accounts")
    assert not UserFactory(provider=provider, roles=[Role.CUSTOMER]).has_module_perms("accounts")


def test_an_inactive_user_has_no_permission(provider):
    user = UserFactory(provider=provider, roles=[Role.ADMIN], is_active=False)

    assert not role_allows(Role.ADMIN, "accounts.view_user", user=user)
    assert not user.has_perm("accounts.view_user")
