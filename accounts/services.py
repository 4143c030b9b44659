"""Accounts: signing in, choosing and switching roles, and administering users and their roles.

Login never hands a multi-role user a token directly: it returns a short-lived, single-use ticket
that only `role_select` accepts, so nobody can mint a token by naming a user id (the original
system's hole). Tokens are re-checked on every request (see `accounts.authentication`).
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr
from enum import Enum
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login, user_logged_in
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import DateTimeField, F, Q, QuerySet, Value
from django.http import HttpRequest
from django.utils import timezone
from django.utils.http import urlsafe_base64_decode
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import messaging
from accounts.messaging import MESSAGE_MAX_ATTEMPTS, MESSAGE_RETRY_BACKOFF_MAX
from accounts.models import (
    UNSENT,
    Message,
    MessageKind,
    MessageStatus,
    NotificationSettings,
    RoleSelectionTicket,
    User,
    UserRole,
    normalize_email,
)
from accounts.roles import PLATFORM_ROLES, Role
from accounts.sessions import SESSION_ROLE_KEY
from accounts.signals import password_set, role_removed, role_selected, role_switched
from accounts.tokens import PROVIDER_CLAIM, ROLE_CLAIM, TokenPair, token_pair_for
from config.bulk import insert_selected
from config.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized
from config.queue import send_on_commit
from providers.models import Provider

logger = logging.getLogger(__name__)


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


class AccountInactive(Conflict):
    code = "account_inactive"


class LinkInvalid(DomainError):
    code = "link_invalid"


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
        raise InvalidCredentials(_("The email or password is not correct."))
    return _login_open(user=user, request=request)


@transaction.atomic
def _login_open(*, user: User, request: HttpRequest | None) -> LoginOutcome:
    roles = user.role_names
    if not roles:
        raise Forbidden(_("This account has no role yet. Ask an administrator to assign one."))
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
        raise TicketInvalid(_("This role selection has expired or was already used. Sign in again."))
    user = row.user
    if role not in user.role_names:
        raise RoleNotHeld(
            _("You do not hold the role %(role)s. Choose one of: %(roles)s.")
            % {"role": role, "roles": ", ".join(user.role_names)}
        )
    row.used_at = now
    row.save(update_fields=["used_at"])
    tokens = token_pair_for(user=user, role=role)
    role_selected.send(sender=User, user=user, role=role)
    return user, tokens


@transaction.atomic
def role_switch(*, user: User, from_role: str, to_role: str) -> TokenPair:
    """New tokens for another role the caller holds, without signing in again."""
    if to_role not in user.role_names:
        raise RoleNotHeld(
            _("You do not hold the role %(role)s. Choose one of: %(roles)s.")
            % {"role": to_role, "roles": ", ".join(user.role_names)}
        )
    tokens = token_pair_for(user=user, role=to_role)
    role_switched.send(sender=User, user=user, from_role=from_role, to_role=to_role)
    return tokens


def _parse_refresh(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)
    except TokenError as exc:
        raise SessionEnded(_("Your session has ended. Sign in again.")) from exc


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
    ended = SessionEnded(_("Your session has ended. Sign in again."))
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
            _("Unknown role %(unknown)s. Roles are: %(roles)s.")
            % {"unknown": ", ".join(unknown), "roles": ", ".join(Role.values)},
            field="roles",
        )
    if provider is None and set(roles) - PLATFORM_ROLES:
        raise ProviderRequired(
            _("Only administrators may have no provider; choose the provider this user works for."),
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
        raise EmailTaken(
            _("An account with the email %(email)s already exists.") % {"email": email}, field="email"
        )
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


USER_EDITABLE_FIELDS = ("name", "phone", "address", "designation", "language", "is_active")


@transaction.atomic
def user_update(*, user: User, updated_by: User | None, **changes: Any) -> User:
    unknown = set(changes) - set(USER_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"user_update cannot change {sorted(unknown)}")
    if changes.get("is_active") is False and updated_by is not None and updated_by.pk == user.pk:
        raise DomainError(_("You cannot deactivate your own account."), field="isActive")
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
        raise NotFound(
            _("%(email)s does not hold the role %(role)s.") % {"email": user.email, "role": role}, held=held
        )
    if len(held) == 1:
        raise LastRole(_("Cannot remove the last role: a user must keep at least one role."), role=role)
    UserRole.objects.filter(user=user, role=role).delete()
    _sync_staff_flag(user)
    role_removed.send(sender=User, user=user, role=role, removed_by=removed_by)


@transaction.atomic
def user_roles_set(*, user: User, roles: list[str], changed_by: User | None) -> None:
    """Make the user's roles exactly `roles` (Django admin's checkboxes)."""
    wanted = roles_validate(roles, user.provider)
    if not wanted:
        raise LastRole(_("A user must keep at least one role."), field="roles")
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
    tickets, _by_model = RoleSelectionTicket.objects.filter(expires_at__lte=now).delete()
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
        raise InvalidCredentials(_("The email or password is not correct."), field="password")
    return _session_open(request=request, user=user)


@transaction.atomic
def _session_open(*, request: HttpRequest, user: User) -> User:
    roles = user.role_names
    if not roles:
        raise Forbidden(_("This account has no role yet. Ask an administrator to assign one."))
    login(request, user)  # a new session key, and user_logged_in for the audit trail
    if len(roles) == 1:
        request.session[SESSION_ROLE_KEY] = roles[0]
        role_selected.send(sender=User, user=user, role=roles[0])
    return user


@transaction.atomic
def session_role_select(*, request: HttpRequest, user: User, role: str) -> None:
    """Act in `role` from now on in this session: chosen after signing in, or switched to later."""
    if role not in user.role_names:
        raise RoleNotHeld(
            _("You do not hold the role %(role)s. Choose one of: %(roles)s.")
            % {"role": role, "roles": ", ".join(user.role_names)}
        )
    current = request.session.get(SESSION_ROLE_KEY)
    request.session[SESSION_ROLE_KEY] = role
    if current and current != role:
        role_switched.send(sender=User, user=user, from_role=current, to_role=role)
    else:
        role_selected.send(sender=User, user=user, role=role)


# --- e-mail messages ----------------------------------------------------------------------------------
# A message is recorded in the transaction of the change it reports and handed to a worker once that
# commits (`send_on_commit`), so a request never waits on a mail server and a rolled-back change tells
# nobody anything. Sending is idempotent: a message sent, failed, or held by another worker is left.

# Message ids per fan-out task: a billing run's chunk hands its bills' messages over in one task, and
# that task (on a worker, off the run's path) sends one task per message.
FAN_OUT_BATCH = 1000


@transaction.atomic
def message_queue(
    *,
    kind: str,
    recipient: str,
    about: Any,
    language: str,
    user: User | None = None,
    provider: Provider | None = None,
) -> Message:
    """Record one message about the row `about` and send it once this transaction commits."""
    if kind not in MessageKind.values:
        raise ValueError(f"unknown message kind {kind!r}")
    message = Message.objects.create(
        kind=kind,
        recipient=recipient,
        about_type=about._meta.label_lower,
        about_id=about.pk,
        language=language,
        user=user,
        provider=provider,
    )
    messages_dispatch(message_ids=[message.pk])
    return message


# No savepoint: the messages are part of the caller's change, and fail it with them.
@transaction.atomic(savepoint=False)
def messages_queue_selected(
    *, kind: str, rows: QuerySet, recipient: str, user: str, language: str
) -> list[int]:
    """Record a message of `kind` about each of `rows` (their provider's, a row each) and send them once
    this transaction commits; returns their ids. `recipient`, `user` and `language` are the lookups from
    a row to its address, login and language (`customer__email`). The database writes the messages from
    the query itself (INSERT ... SELECT), nothing per message in Python: a billing run's chunk records a
    thousand at once."""
    if kind not in MessageKind.values:
        raise ValueError(f"unknown message kind {kind!r}")
    now = Value(timezone.now(), output_field=DateTimeField())
    selected = {
        "provider_id": F("provider_id"),
        "user_id": F(user),
        "recipient": F(recipient),
        "language": F(language),
        "about_type": Value(rows.model._meta.label_lower),
        "about_id": F("pk"),
        "kind": Value(kind),
        "status": Value(MessageStatus.QUEUED.value),
        "attempts": Value(0),
        "last_error": Value(""),
        "created_at": now,
        "updated_at": now,
    }
    message_ids = insert_selected(Message, list(selected), rows.order_by().values_list(*selected.values()))
    messages_dispatch(message_ids=message_ids)
    return message_ids


def messages_dispatch(*, message_ids: list[int]) -> None:
    """Hand messages to the workers once the current transaction commits. A broker that cannot be
    reached then is logged; the reconciler sends them later (`messages_reconcile`)."""
    # accounts.tasks calls the services of this module: imported here to break that cycle.
    from accounts.tasks import send_message, send_messages

    if not message_ids:
        return
    batches = [message_ids[i : i + FAN_OUT_BATCH] for i in range(0, len(message_ids), FAN_OUT_BATCH)]
    send_on_commit(
        (lambda: send_message.delay(message_ids[0]))
        if len(message_ids) == 1
        else (lambda: [send_messages.delay(batch) for batch in batches]),
        sent=lambda: None,
        what=f"{len(message_ids)} e-mail message(s)",
    )


class Delivery(Enum):
    SENT = "sent"
    RETRY = "retry"  # a transient failure, recorded; the task tries again later
    FAILED = "failed"
    SKIPPED = "skipped"  # sent or failed already, or another worker holds it


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery: Delivery
    reason: str = ""


def _claim(message_id: int) -> Message | None:
    """The message, locked, if it is still to be sent and no other worker holds it."""
    return (
        Message.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("provider")
        .filter(pk=message_id, status__in=UNSENT)
        .first()
    )


def message_send(*, message_id: int, final_attempt: bool = False) -> DeliveryOutcome:
    """Send one message through Django's e-mail framework and record how it went.

    The attempt is counted in a transaction of its own before the mail server is spoken to, so a
    delivery that crashes the worker still counts (the reconciler gives up after MESSAGE_MAX_ATTEMPTS). The row
    stays locked while the server is spoken to: a message delivered twice to the workers is sent once.
    A transient failure is recorded as retrying (the caller tries again later) unless this is the
    `final_attempt`; a hard one, or a transient one on the final attempt, fails the message for good.
    """
    with transaction.atomic():
        message = _claim(message_id)
        if message is None:
            return DeliveryOutcome(Delivery.SKIPPED)
        message.attempts += 1
        message.save(update_fields=["attempts", "updated_at"])
    with transaction.atomic():
        message = _claim(message_id)
        if message is None:
            return DeliveryOutcome(Delivery.SKIPPED)
        try:
            content = messaging.content_of(message)
        except ObjectDoesNotExist:
            return _message_failed(message, "what it was about no longer exists")
        try:
            _email(message, content).send()
        except messaging.DELIVERY_PROBLEMS as problem:
            failure = messaging.failure_of(problem)
            if failure.transient and not final_attempt:
                message.status, message.last_error = MessageStatus.RETRYING, failure.reason
                message.save(update_fields=["status", "last_error", "updated_at"])
                return DeliveryOutcome(Delivery.RETRY, failure.reason)
            return _message_failed(message, failure.reason)
        message.status, message.sent_at = MessageStatus.SENT, timezone.now()
        message.save(update_fields=["status", "sent_at", "updated_at"])
        return DeliveryOutcome(Delivery.SENT)


def _message_failed(message: Message, reason: str) -> DeliveryOutcome:
    message.status, message.last_error = MessageStatus.FAILED, reason[:500]
    message.save(update_fields=["status", "last_error", "updated_at"])
    logger.warning("message %s (%s) failed: %s", message.pk, message.kind, reason)
    return DeliveryOutcome(Delivery.FAILED, reason)


def _email(message: Message, content: messaging.Content) -> EmailMultiAlternatives:
    provider = message.provider
    sender = settings.DEFAULT_FROM_EMAIL
    email = EmailMultiAlternatives(
        subject=content.subject,
        body=content.text,
        # The provider's name as the sender's, its own address for replies; the platform's address
        # sends (a provider's domain would not vouch for our server).
        from_email=formataddr((provider.name, sender)) if provider else sender,
        to=[message.recipient],
        reply_to=[provider.email] if provider and provider.email else None,
        headers={"Auto-Submitted": "auto-generated", "Content-Language": message.language},
    )
    email.attach_alternative(content.html, "text/html")
    for attachment in content.attachments:
        email.attach(attachment.filename, attachment.content, attachment.mimetype)
    return email


@transaction.atomic
def messages_reconcile(*, now: datetime | None = None, limit: int = 1000) -> tuple[int, int]:
    """Messages nobody has touched for the grace period, still unsent: their task was lost (a broker
    restarted, a worker killed, a send after the commit that failed). Those tried MAX_ATTEMPTS times
    already fail for good; the others (`limit` at most, oldest first) are sent again. Returns
    (sent again, given up). A message merely waiting its turn behind a long queue may be sent again
    too: its second task finds it sent and does nothing."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.MESSAGE_RESEND_AFTER_SECONDS)
    stalled = Message.objects.filter(
        Q(status=MessageStatus.QUEUED, updated_at__lt=now - grace)
        # A retry waits its backoff, at most MESSAGE_RETRY_BACKOFF_MAX, before it counts as lost.
        | Q(
            status=MessageStatus.RETRYING,
            updated_at__lt=now - grace - timedelta(seconds=MESSAGE_RETRY_BACKOFF_MAX),
        )
    )
    worn_out = list(stalled.filter(attempts__gte=MESSAGE_MAX_ATTEMPTS).values_list("pk", flat=True)[:limit])
    for message in Message.objects.filter(pk__in=worn_out).select_for_update(skip_locked=True):
        _message_failed(message, message.last_error or f"not delivered after {message.attempts} attempts")
    again = list(
        stalled.filter(attempts__lt=MESSAGE_MAX_ATTEMPTS)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    )
    if again:
        # Touched, so the next pass waits the grace period again before sending them once more.
        Message.objects.filter(pk__in=again).update(updated_at=now)
        messages_dispatch(message_ids=again)
    return len(again), len(worn_out)


# --- a way in: invitations and password resets -------------------------------------------------------


def invitation_send(*, user: User, language: str) -> Message:
    """E-mail `user` the invitation to set their password and sign in (the caller's transaction)."""
    if not user.is_active:
        raise AccountInactive(
            _("The account of %(email)s is deactivated; reactivate it before inviting.")
            % {"email": user.email}
        )
    return message_queue(
        kind=MessageKind.INVITATION,
        recipient=user.email,
        about=user,
        language=language,
        user=user,
        provider=user.provider,
    )


@transaction.atomic
def password_reset_request(*, email: str) -> None:
    """ "Forgot password": e-mail the active account with this address a link to set a new password.

    The same (nothing) whatever the address: whether an account exists is never told."""
    user = (
        User.objects.filter(email=normalize_email(email), is_active=True).select_related("provider").first()
    )
    if user is None:
        return
    message_queue(
        kind=MessageKind.PASSWORD_RESET,
        recipient=user.email,
        about=user,
        language=messaging.language_of(user),
        user=user,
        provider=user.provider,
    )


def password_reset_user(*, uidb64: str, token: str) -> User:
    """The active user a set-password link is for, if its token is still good (not expired, not used)."""
    try:
        user_id = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, UnicodeDecodeError):
        user_id = None
    user = User.objects.filter(pk=user_id, is_active=True).first() if user_id else None
    if user is None or not default_token_generator.check_token(user, token):
        raise LinkInvalid(
            _('This link has expired or was already used. Ask for a new one with "Forgot password".')
        )
    return user


@transaction.atomic
def password_set_with_token(*, uidb64: str, token: str, password: str) -> User:
    """Set a password through an invitation or reset link; the link stops working (the token covers the
    password hash, which changes)."""
    user = password_reset_user(uidb64=uidb64, token=token)
    user = User.objects.select_for_update().get(pk=user.pk)
    if not default_token_generator.check_token(user, token):  # used meanwhile by a request that won the lock
        raise LinkInvalid(
            _('This link has expired or was already used. Ask for a new one with "Forgot password".')
        )
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), field="password") from exc
    user.set_password(password)
    user.save(update_fields=["password", "updated_at"])
    password_set.send(sender=User, user=user)
    return user


@transaction.atomic
def notification_settings_set(*, provider: Provider, due_reminder_days: int) -> NotificationSettings:
    """How many days before a bill's due date its customer is reminded."""
    settings_row, _created = NotificationSettings.objects.select_for_update().get_or_create(provider=provider)
    settings_row.due_reminder_days = due_reminder_days
    try:
        settings_row.full_clean(exclude=["provider"])
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), field="dueReminderDays") from exc
    settings_row.save()
    return settings_row
