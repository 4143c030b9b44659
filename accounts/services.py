"""Accounts: signing in, choosing and switching roles, and administering users and their roles.

Login never hands a multi-role user a token directly: it returns a short-lived, single-use ticket
that only `role_select` accepts, so nobody can mint a token by naming a user id (the original
system's hole). Tokens are re-checked on every request (see `accounts.authentication`).
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login, user_logged_in
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import RoleSelectionTicket, User, UserRole, normalize_email
from accounts.roles import PLATFORM_ROLES, Role
from accounts.sessions import SESSION_ROLE_KEY
from accounts.signals import role_removed, role_selected, role_switched
from accounts.tokens import PROVIDER_CLAIM, ROLE_CLAIM, TokenPair, token_pair_for
from config.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized
from providers.models import Provider


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class TicketInvalid(Unauthorized):
    code = "ticket_invalid"


class SessionEnded(Unauthorized):
    code = "token_not_valid"


class RoleNotHeld(Forbidden):
    code = "role_not_held"


class LastRole(Conflict):
    code = "role_last"


class EmailTaken(Conflict):
    code = "email_taken"


class ProviderRequired(DomainError):
    code = "provider_required"


@dataclass(frozen=True)
class LoginOutcome:
    user: User
    roles: list[str]
    tokens: TokenPair | None = None  # set when the user holds exactly one role
    ticket: str | None = None  # set when the user must choose a role first
    ticket_expires_at: datetime | None = None

    @property
    def selected_role(self) -> str | None:
        return self.roles[0] if self.tokens else None


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def login_start(*, email: str, password: str, request: HttpRequest | None = None) -> LoginOutcome:
    """Check the password; one role -> tokens for it, several -> a ticket to choose one with.

    The check is outside the transaction: a refused attempt is still recorded (user_login_failed)."""
    user = authenticate(request, email=normalize_email(email), password=password)
    if user is None:
        # The same answer for an unknown email, a wrong password and an inactive account.
        raise InvalidCredentials("The email or password is not correct.")
    return _login_open(user=user, request=request)


@transaction.atomic
def _login_open(*, user: User, request: HttpRequest | None) -> LoginOutcome:
    roles = user.role_names
    if not roles:
        raise Forbidden("This account has no role yet. Ask an administrator to assign one.")
    user_logged_in.send(sender=User, request=request, user=user)
    if len(roles) == 1:
        return LoginOutcome(user=user, roles=roles, tokens=token_pair_for(user=user, role=roles[0]))
    ticket = secrets.token_urlsafe(32)
    expires_at = timezone.now() + settings.ROLE_SELECTION_TICKET_TTL
    RoleSelectionTicket.objects.create(user=user, digest=_digest(ticket), expires_at=expires_at)
    return LoginOutcome(user=user, roles=roles, ticket=ticket, ticket_expires_at=expires_at)


@transaction.atomic
def role_select(*, ticket: str, role: str, user_id: int | None = None) -> tuple[User, TokenPair]:
    """Trade a login's selection ticket, once, for tokens in a role the user holds."""
    now = timezone.now()
    row = (
        RoleSelectionTicket.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(digest=_digest(ticket))
        .first()
    )
    if (
        row is None
        or row.used_at is not None
        or row.expires_at <= now
        or (user_id is not None and row.user_id != user_id)
        or not row.user.is_active
    ):
        raise TicketInvalid("This role selection has expired or was already used. Sign in again.")
    user = row.user
    if role not in user.role_names:
        raise RoleNotHeld(f"You do not hold the role {role}. Choose one of: {', '.join(user.role_names)}.")
    row.used_at = now
    row.save(update_fields=["used_at"])
    tokens = token_pair_for(user=user, role=role)
    role_selected.send(sender=User, user=user, role=role)
    return user, tokens


@transaction.atomic
def role_switch(*, user: User, from_role: str, to_role: str) -> TokenPair:
    """New tokens for another role the caller holds, without signing in again."""
    if to_role not in user.role_names:
        raise RoleNotHeld(f"You do not hold the role {to_role}. Choose one of: {', '.join(user.role_names)}.")
    tokens = token_pair_for(user=user, role=to_role)
    role_switched.send(sender=User, user=user, from_role=from_role, to_role=to_role)
    return tokens


def _parse_refresh(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)
    except TokenError as exc:
        raise SessionEnded("Your session has ended. Sign in again.") from exc


def _blacklist_once(token: RefreshToken) -> bool:
    """Blacklist the token's outstanding row, under a lock; False if it already was."""
    outstanding = (
        OutstandingToken.objects.select_for_update()
        .filter(jti=token[jwt_settings.JTI_CLAIM])
        .order_by()  # the model orders by user, a nullable join PostgreSQL cannot lock
        .first()
    )
    if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
        return False
    BlacklistedToken.objects.create(token=outstanding)
    return True


@transaction.atomic
def tokens_refresh(*, refresh: str) -> tuple[User, str, TokenPair]:
    """Rotate a refresh token: the old one is revoked, the user and role are checked again."""
    token = _parse_refresh(refresh)
    ended = SessionEnded("Your session has ended. Sign in again.")
    if not _blacklist_once(token):
        raise ended  # a refresh token is good for one use; a replay ends here
    role = token.get(ROLE_CLAIM)
    user = User.objects.filter(pk=token.get(jwt_settings.USER_ID_CLAIM), is_active=True).first()
    if user is None or role not in user.role_names or token.get(PROVIDER_CLAIM) != user.provider_id:
        raise ended
    return user, role, token_pair_for(user=user, role=role)


@transaction.atomic
def tokens_revoke(*, refresh: str) -> None:
    """Sign out: the refresh token can no longer be used. Revoking twice is harmless."""
    try:
        token = RefreshToken(refresh)
    except TokenError:
        return  # an expired, revoked or forged token grants nothing already
    _blacklist_once(token)


def roles_validate(roles: list[str], provider: Provider | None) -> list[str]:
    unknown = [role for role in roles if role not in Role.values]
    if unknown:
        raise DomainError(
            f"Unknown role {', '.join(unknown)}. Roles are: {', '.join(Role.values)}.", field="roles"
        )
    if provider is None and set(roles) - PLATFORM_ROLES:
        raise ProviderRequired(
            "Only administrators may have no provider; choose the provider this user works for.",
            field="providerId",
        )
    return list(dict.fromkeys(roles))


def _sync_staff_flag(user: User) -> None:
    """Django admin is for administrators; the flag follows the Admin role."""
    is_admin = user.roles.filter(role=Role.ADMIN).exists()
    if user.is_staff != is_admin:
        user.is_staff = is_admin
        user.save(update_fields=["is_staff", "updated_at"])


@transaction.atomic
def user_create(
    *,
    email: str,
    name: str,
    provider: Provider | None,
    roles: list[str] | None = None,
    password: str | None = None,
    phone: str = "",
    address: str = "",
    designation: str = "",
    created_by: User | None = None,
) -> User:
    """A new user with the roles given (Customer when none). No password: one that cannot sign in."""
    roles = roles_validate(roles or [Role.CUSTOMER], provider)
    email = normalize_email(email)
    if User.objects.filter(email=email).exists():
        raise EmailTaken(f"An account with the email {email} already exists.", field="email")
    user = User(
        email=email, name=name, provider=provider, phone=phone, address=address, designation=designation
    )
    if password is not None:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise DomainError(" ".join(exc.messages), field="password") from exc
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    UserRole.objects.bulk_create([UserRole(user=user, role=role, assigned_by=created_by) for role in roles])
    _sync_staff_flag(user)
    return user


USER_EDITABLE_FIELDS = ("name", "phone", "address", "designation", "is_active")


@transaction.atomic
def user_update(*, user: User, updated_by: User | None, **changes: Any) -> User:
    unknown = set(changes) - set(USER_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"user_update cannot change {sorted(unknown)}")
    if changes.get("is_active") is False and updated_by is not None and updated_by.pk == user.pk:
        raise DomainError("You cannot deactivate your own account.", field="isActive")
    user = User.objects.select_for_update().get(pk=user.pk)
    for field, value in changes.items():
        setattr(user, field, value)
    user.full_clean(exclude=["password"])
    user.save(update_fields=[*changes, "updated_at"])
    return user


def _locked(user: User) -> User:
    """Role changes of one user are serialised on the user row (so two removals cannot both pass)."""
    return User.objects.select_for_update().get(pk=user.pk)


@transaction.atomic
def user_role_assign(*, user: User, role: str, assigned_by: User | None) -> bool:
    """Give the user a role; False when they already held it."""
    user = _locked(user)
    roles_validate([role], user.provider)
    if user.roles.filter(role=role).exists():
        return False
    UserRole.objects.create(user=user, role=role, assigned_by=assigned_by)
    _sync_staff_flag(user)
    return True


@transaction.atomic
def user_role_remove(*, user: User, role: str, removed_by: User | None) -> None:
    user = _locked(user)
    held = user.role_names
    if role not in held:
        raise NotFound(f"{user.email} does not hold the role {role}.", held=held)
    if len(held) == 1:
        raise LastRole("Cannot remove the last role: a user must keep at least one role.", role=role)
    UserRole.objects.filter(user=user, role=role).delete()
    _sync_staff_flag(user)
    role_removed.send(sender=User, user=user, role=role, removed_by=removed_by)


@transaction.atomic
def user_roles_set(*, user: User, roles: list[str], changed_by: User | None) -> None:
    """Make the user's roles exactly `roles` (Django admin's checkboxes)."""
    wanted = roles_validate(roles, user.provider)
    if not wanted:
        raise LastRole("A user must keep at least one role.", field="roles")
    for role in wanted:
        user_role_assign(user=user, role=role, assigned_by=changed_by)
    for role in set(_locked(user).role_names) - set(wanted):
        user_role_remove(user=user, role=role, removed_by=changed_by)


@dataclass(frozen=True)
class PurgeResult:
    tickets: int
    tokens: int


@transaction.atomic
def auth_records_purge(*, now: datetime | None = None) -> PurgeResult:
    """Delete expired role selection tickets and expired refresh tokens (they grant nothing)."""
    now = now or timezone.now()
    tickets, _ = RoleSelectionTicket.objects.filter(expires_at__lte=now).delete()
    expired = OutstandingToken.objects.filter(expires_at__lte=now)
    tokens = expired.count()
    expired.delete()  # blacklist rows go with them
    return PurgeResult(tickets=tickets, tokens=tokens)


# --- pages: a signed-in session acting in one role -------------------------------------------------


def session_sign_in(*, request: HttpRequest, email: str, password: str) -> User:
    """Sign a person into the pages' session; a user with one role acts in it at once.

    The password check is outside the transaction, as for the API: a refused attempt is recorded."""
    user = authenticate(request, email=normalize_email(email), password=password)
    if user is None:
        raise InvalidCredentials("The email or password is not correct.", field="password")
    return _session_open(request=request, user=user)


@transaction.atomic
def _session_open(*, request: HttpRequest, user: User) -> User:
    roles = user.role_names
    if not roles:
        raise Forbidden("This account has no role yet. Ask an administrator to assign one.")
    login(request, user)  # a new session key, and user_logged_in for the audit trail
    if len(roles) == 1:
        request.session[SESSION_ROLE_KEY] = roles[0]
        role_selected.send(sender=User, user=user, role=roles[0])
    return user


@transaction.atomic
def session_role_select(*, request: HttpRequest, user: User, role: str) -> None:
    """Act in `role` from now on in this session: chosen after signing in, or switched to later."""
    if role not in user.role_names:
        raise RoleNotHeld(f"You do not hold the role {role}. Choose one of: {', '.join(user.role_names)}.")
    current = request.session.get(SESSION_ROLE_KEY)
    request.session[SESSION_ROLE_KEY] = role
    if current and current != role:
        role_switched.send(sender=User, user=user, from_role=current, to_role=role)
    else:
        role_selected.send(sender=User, user=user, role=role)
