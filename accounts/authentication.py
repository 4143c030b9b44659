import functools

from django.db import connection
from django.db.models import Model
from django.utils.translation import gettext as _
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from accounts.models import User, UserRole
from accounts.roles import Role
from accounts.sessions import session_role
from accounts.tokens import PROVIDER_CLAIM, ROLE_CLAIM
from config import context
from providers.models import Provider


class RoleJWTAuthentication(JWTAuthentication):
    """Bearer tokens whose user, role and provider are checked against the database on every request.

    A token is only a claim: a deactivated user, a removed role or a move to another provider stops
    it on the very next request, whatever the token says. The user is read in one query.
    """

    def authenticate(self, request: Request) -> tuple[User, Token] | None:
        result = super().authenticate(request)
        if result is not None:
            user, _token = result
            context.bind(actor_id=user.pk, role=user.active_role, provider_id=user.provider_id)
        return result

    def get_user(self, validated_token: Token) -> User:
        user_id = validated_token.get(api_settings.USER_ID_CLAIM)
        role = validated_token.get(ROLE_CLAIM)
        try:
            user_pk = int(user_id)  # simplejwt writes it as text
        except (TypeError, ValueError):
            user_pk = None
        if user_pk is None or role not in Role.values:
            raise InvalidToken(_("This token does not name a user and a role; sign in again."))
        user, holds_role = _token_user(user_pk, role)
        if user is None or not user.is_active:
            raise AuthenticationFailed(
                _("This account is not active. Ask an administrator."), code="user_inactive"
            )
        if not holds_role:
            raise AuthenticationFailed(
                _("You no longer hold the role %(role)s. Sign in again to choose another role.")
                % {"role": role},
                code="role_revoked",
            )
        if validated_token.get(PROVIDER_CLAIM) != user.provider_id:
            raise AuthenticationFailed(
                _("Your account moved to another provider. Sign in again."), code="provider_changed"
            )
        user.active_role = Role(role)
        return user


@functools.cache
def _token_user_statement(vendor: str) -> str:
    """The user, their provider and whether they hold a role, in one statement written once: the ORM's
    query (`select_related` and an `Exists`) cost more to compile than to run, on every API request."""
    quote = connection.ops.quote_name
    users, providers, roles = User._meta, Provider._meta, UserRole._meta
    columns = [f"u.{quote(field.column)}" for field in users.concrete_fields]
    columns += [f"p.{quote(field.column)}" for field in providers.concrete_fields]
    return f"""SELECT {", ".join(columns)},
            EXISTS (SELECT 1 FROM {quote(roles.db_table)} r
                    WHERE r.{quote(roles.get_field("user").column)} = u.{quote(users.pk.column)}
                      AND r.{quote(roles.get_field("role").column)} = %s)
        FROM {quote(users.db_table)} u
        LEFT JOIN {quote(providers.db_table)} p
            ON p.{quote(providers.pk.column)} = u.{quote(users.get_field("provider").column)}
        WHERE u.{quote(users.pk.column)} = %s"""  # noqa: S608 (model tables; values as parameters)


def _token_user(user_id: int, role: str) -> tuple[User | None, bool]:
    """The token's user (with their provider, as `select_related` leaves it) and whether they hold `role`."""
    with connection.cursor() as cursor:
        cursor.execute(_token_user_statement(connection.vendor), [role, user_id])
        row = cursor.fetchone()
    if row is None:
        return None, False
    width = len(User._meta.concrete_fields)
    user = _from_row(User, row[:width])
    provider = _from_row(Provider, row[width:-1]) if row[width] is not None else None
    User._meta.get_field("provider").set_cached_value(user, provider)
    return user, bool(row[-1])


def _from_row(model: type[Model], values: tuple) -> Model:
    """A model instance from its concrete columns as the database returned them, converted as the ORM
    converts them (SQLite returns decimals, dates and booleans in forms of its own)."""
    converted = list(values)
    for field, at in zip(model._meta.concrete_fields, range(len(values)), strict=True):
        column = field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
            converted[at] = convert(converted[at], column, connection)
    return model.from_db(
        connection.alias, [field.attname for field in model._meta.concrete_fields], converted
    )


class SessionRoleAuthentication(SessionAuthentication):
    """The pages' own session, for the API calls their scripts make (progress, a bill's amount).

    It acts in the role the session chose, re-checked like a token's; without a chosen role the
    request is anonymous. Django's CSRF check applies to every unsafe method."""

    def authenticate(self, request: Request) -> tuple[User, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        role = session_role(request._request)
        if role is None:
            return None
        user = result[0]
        user.active_role = role
        context.bind(actor_id=user.pk, role=role, provider_id=user.provider_id)
        return user, None
