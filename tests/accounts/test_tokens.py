from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.authentication import _token_user
from accounts.models import User
from accounts.roles import Role
from accounts.services import auth_records_purge
from accounts.tokens import token_pair_for
from tests.factories import ProviderFactory, UserFactory

pytestmark = pytest.mark.django_db
REFRESH, LOGOUT, ME = "/api/auth/refresh", "/api/auth/logout", "/api/auth/me"


@pytest.fixture
def auditor(provider):
    return UserFactory(provider=provider, roles=[Role.AUDITOR, Role.CUSTOMER])


def test_refresh_rotates_the_pair_and_keeps_the_role(api, auditor):
    pair = token_pair_for(user=auditor, role=Role.AUDITOR)

    response = api.post(REFRESH, {"refreshToken": pair.refresh}, format="json")

    assert response.status_code == 200
    assert response.json()["selectedRole"] == "Auditor"
    assert response.json()["refreshToken"] != pair.refresh
    replay = api.post(REFRESH, {"refreshToken": pair.refresh}, format="json")
    assert replay.status_code == 401
    assert replay.json()["code"] == "token_not_valid"


def test_logout_revokes_the_refresh_token(api, auditor):
    pair = token_pair_for(user=auditor, role=Role.AUDITOR)

    assert api.post(LOGOUT, {"refreshToken": pair.refresh}, format="json").status_code == 204
    assert api.post(REFRESH, {"refreshToken": pair.refresh}, format="json").status_code == 401
    assert api.post(LOGOUT, {"refreshToken": pair.refresh}, format="json").status_code == 204


def test_refresh_fails_once_the_role_is_removed(api, auditor):
    pair = token_pair_for(user=auditor, role=Role.AUDITOR)
    auditor.roles.filter(role=Role.AUDITOR).delete()

    assert api.post(REFRESH, {"refreshToken": pair.refresh}, format="json").status_code == 401


def test_refresh_fails_once_the_user_is_deactivated(api, auditor):
    pair = token_pair_for(user=auditor, role=Role.AUDITOR)
    User.objects.filter(pk=auditor.pk).update(is_active=False)

    assert api.post(REFRESH, {"refreshToken": pair.refresh}, format="json").status_code == 401


def test_an_access_token_stops_at_the_next_request_after_role_removal(as_role, auditor):
    client = as_role(auditor, Role.AUDITOR)
    assert client.get(ME).status_code == 200

    auditor.roles.filter(role=Role.AUDITOR).delete()
    response = client.get(ME)

    assert response.status_code == 401
    assert response.json()["code"] == "role_revoked"
    assert "no longer hold the role Auditor" in response.json()["detail"]


def test_an_access_token_stops_at_the_next_request_after_deactivation(as_role, auditor):
    client = as_role(auditor, Role.CUSTOMER)
    User.objects.filter(pk=auditor.pk).update(is_active=False)

    response = client.get(ME)

    assert response.status_code == 401
    assert response.json()["code"] == "user_inactive"


def test_an_access_token_stops_when_the_user_moves_provider(as_role, auditor):
    client = as_role(auditor, Role.AUDITOR)
    User.objects.filter(pk=auditor.pk).update(provider=ProviderFactory())

    assert client.get(ME).json()["code"] == "provider_changed"


def test_a_signed_token_naming_no_user_id_or_a_deleted_user_is_refused(api, auditor):
    for user_id in ("not-a-number", str(auditor.pk + 1000)):
        token = AccessToken.for_user(auditor)
        token["user_id"], token["role"], token["provider"] = user_id, Role.AUDITOR, auditor.provider_id
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

        assert api.get(ME).status_code == 401


def test_the_token_check_reads_the_user_and_their_provider_as_the_orm_does_in_one_query(
    auditor, django_assert_num_queries
):
    User.objects.filter(pk=auditor.pk).update(last_login=timezone.now())
    stored = User.objects.select_related("provider").get(pk=auditor.pk)

    with django_assert_num_queries(1):
        user, holds_role = _token_user(auditor.pk, Role.AUDITOR)
        provider = user.provider

    def values(row) -> list:  # with their types: SQLite returns decimals, dates and flags its own way
        return [
            (type(value), value) for value in (getattr(row, f.attname) for f in row._meta.concrete_fields)
        ]

    assert holds_role and _token_user(auditor.pk, Role.ADMIN)[1] is False
    assert values(user) == values(stored)
    assert values(provider) == values(stored.provider)


def test_purge_drops_expired_refresh_tokens_only(auditor):
    token_pair_for(user=auditor, role=Role.AUDITOR)

    result = auth_records_purge(now=timezone.now() + timedelta(days=8))
    nothing = auth_records_purge()

    assert (result.tokens, nothing.tokens) == (1, 0)
