from django.db.models import Exists, OuterRef
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
        if user_id is None or role not in Role.values:
            raise InvalidToken("This token does not name a user and a role; sign in again.")
        user = (
            User.objects.select_related("provider")
            .annotate(holds_role=Exists(UserRole.objects.filter(user=OuterRef("pk"), role=role)))
            .filter(pk=user_id)
            .first()
        )
        if user is None or not user.is_active:
            raise AuthenticationFailed(
                "This account is not active. Ask an administrator.", code="user_inactive"
            )
        if not user.holds_role:
            raise AuthenticationFailed(
                f"You no longer hold the role {role}. Sign in again to choose another role.",
                code="role_revoked",
            )
        if validated_token.get(PROVIDER_CLAIM) != user.provider_id:
            raise AuthenticationFailed(
                "Your account moved to another provider. Sign in again.", code="provider_changed"
            )
        user.active_role = Role(role)
        return user


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
