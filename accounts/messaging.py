"""E-mails: what each kind says, in the recipient's language, and how a delivery that failed is classed.

A message is recorded (`accounts.models.Message`) by the service whose change it reports and written
only when it is sent, by the builder registered for its kind by the app that owns what it is about:
accounts registers the invitation and the password reset (below), invoicing the bill and payment
kinds (`InvoicingConfig.ready`), so this app never imports the apps above it. The language a message
is written in comes the same way: the app holding people's preferences registers where to read it.

Templates: `templates/messages/<language>/<kind>.subject.txt`, `.txt` and `.html`, one set per
language (no compiled translation catalogue to keep in step); the HTML ones extend
`messages/base.html`, which sets `lang` and `dir` (Urdu reads right to left).
"""

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import RIGHT_TO_LEFT, Language, Message, MessageKind, User


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str


@dataclass(frozen=True)
class Content:
    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)


Builder = Callable[[Message], Content]
LanguageSource = Callable[[User], str | None]

_builders: dict[str, Builder] = {}
_language_sources: list[LanguageSource] = []


def register_builder(kind: str, builder: Builder) -> None:
    """`builder(message)` writes messages of `kind`; called once, from the owning app's `ready()`."""
    if kind not in MessageKind.values:
        raise ValueError(f"unknown message kind {kind!r}")
    _builders[kind] = builder


def register_language_source(source: LanguageSource) -> None:
    """`source(user)` gives the language a user reads their e-mail in, or None when it does not know."""
    if source not in _language_sources:
        _language_sources.append(source)


def chosen_language_of(user: User) -> str | None:
    """The language `user` chose (on their own profile, else the first source that knows it, such as
    a customer's language for e-mails); None when they chose none."""
    if user.language in Language.values:
        return user.language
    for source in _language_sources:
        language = source(user)
        if language in Language.values:
            return language
    return None


def language_of(user: User) -> str:
    """The language `user` reads e-mail and pages in: the one they chose, else English."""
    return chosen_language_of(user) or Language.ENGLISH


def content_of(message: Message) -> Content:
    try:
        builder = _builders[message.kind]
    except KeyError:
        raise LookupError(f"no builder is registered for {message.kind} messages") from None
    with translation.override(message.language):  # its attachments (PDFs) in the message's language
        return builder(message)


def render(kind: str, language: str, context: dict[str, Any], attachments: tuple = ()) -> Content:
    """A message of `kind` written from its templates in `language` (English when it has none)."""
    language = language if language in Language.values else Language.ENGLISH
    values = {
        **context,
        "language": language,
        "direction": "rtl" if language in RIGHT_TO_LEFT else "ltr",
        "site_url": settings.SITE_URL,
    }
    base = f"messages/{language}/{kind}"
    with translation.override(language):  # month names in the message's language (Django's own catalogue)
        subject = " ".join(
            render_to_string(f"{base}.subject.txt", values).split()
        )  # one line, for the header
        text = render_to_string(f"{base}.txt", values)
        html = render_to_string(f"{base}.html", values)
    return Content(subject=subject, text=text, html=html, attachments=tuple(attachments))


# --- deliveries that failed ------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    transient: bool  # worth trying again later
    reason: str


def failure_of(problem: Exception) -> Failure:
    """Is a failed delivery worth trying again? SMTP says so by its reply: 4xx is "try again later",
    5xx is "no" (an address refused, a message rejected). A connection refused, dropped or timed out
    is transient; a TLS certificate the server fails, or a command it lacks, is configuration: hard.

    The reason never repeats the address (it is on the message already, and it is personal)."""
    if isinstance(problem, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(problem.recipients.values()), (550, b"recipient refused"))
        return Failure(transient=400 <= code < 500, reason=_reply(code, reply, "recipient refused"))
    if isinstance(problem, smtplib.SMTPResponseException):  # sender, data, connect, HELO, authentication
        code = problem.smtp_code
        return Failure(transient=400 <= code < 500, reason=_reply(code, problem.smtp_error, "refused"))
    if isinstance(problem, smtplib.SMTPServerDisconnected):
        return Failure(transient=True, reason=f"the mail server closed the connection: {problem}"[:500])
    if isinstance(problem, smtplib.SMTPException | ssl.SSLError):
        return Failure(transient=False, reason=f"the mail server cannot be used: {problem}"[:500])
    return Failure(transient=True, reason=f"the mail server cannot be reached: {problem}"[:500])


def _reply(code: int, reply: bytes | str, what: str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return f"{what}: {code} {' '.join(text.split())}"[:500]


# SMTP's own errors are OSErrors too (refused, reset and timed out connections among them).
DELIVERY_PROBLEMS = (OSError,)

# Trying again after a transient failure: Celery's exponential backoff from 30 s, with jitter, capped at
# an hour between tries; after MESSAGE_MAX_RETRIES tries again (about two hours in all) the message fails.
MESSAGE_RETRY_BACKOFF = 30
MESSAGE_RETRY_BACKOFF_MAX = 3600
MESSAGE_MAX_RETRIES = 8
MESSAGE_MAX_ATTEMPTS = MESSAGE_MAX_RETRIES + 1


# --- the accounts app's own messages: a way in ------------------------------------------------------


def set_password_url(user: User) -> str:
    """The one-time link to set `user`'s password: Django's password reset token, which expires after
    PASSWORD_RESET_TIMEOUT and stops working once the password changes (so once it is used)."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse(
        "set-password", kwargs={"uidb64": uidb64, "token": default_token_generator.make_token(user)}
    )
    return f"{settings.SITE_URL.rstrip('/')}{path}"


def _way_in(message: Message) -> Content:
    user = User.objects.select_related("provider").get(pk=message.about_id)
    return render(
        message.kind,
        message.language,
        {
            "user": user,
            "provider": user.provider,
            "link": set_password_url(user),
            "expires_at": timezone.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT),
        },
    )


register_builder(MessageKind.INVITATION, _way_in)
register_builder(MessageKind.PASSWORD_RESET, _way_in)
