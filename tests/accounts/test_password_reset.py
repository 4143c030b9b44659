""" "Forgot password" and setting a password from an e-mailed link: the same answer whatever the address,
a link that works once and expires, Django's password validators, and limits on how often it is asked."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from accounts.models import Message, MessageKind, MessageStatus, User
from accounts.roles import Role
from auditing.models import AuditLog
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-new-passphrase-7"
NOW = datetime(2024, 3, 1, 9, tzinfo=UTC)
LINK = re.compile(r"https?://[^/\s]+(/set-password/([^/\s]+)/([^/\s]+))")


@pytest.fixture
def user(provider):
    return UserFactory(
        provider=provider, roles=[Role.SUPER_CREATOR], email="omar@example.com", name="Omar Farooq"
    )


def ask(api, email: str, capture) -> tuple[int, dict]:
    with capture(execute=True):
        response = api.post("/api/auth/password-reset", {"email": email}, format="json")
    return response.status_code, response.json()


def link_in(mailbox) -> tuple[str, str, str]:
    """(path, uid, token) of the set-password link in the one e-mail received."""
    (received,) = mailbox.received
    return LINK.search(received.text).groups()


def test_a_user_who_forgot_their_password_is_emailed_a_link(
    api, mailbox, user, django_capture_on_commit_callbacks
):
    status, body = ask(api, "Omar@Example.com ", django_capture_on_commit_callbacks)

    (received,) = mailbox.received
    assert status == 202
    assert body == {
        "detail": "If an account uses this address, an e-mail with a link to set a new password is on its way."
    }
    assert received.rcpt_tos == ["omar@example.com"]
    assert received.subject == f"{user.provider.name}: set a new password"
    assert LINK.search(received.text) and LINK.search(received.html)
    message = Message.objects.get()
    assert (message.kind, message.user, message.status) == (
        MessageKind.PASSWORD_RESET,
        user,
        MessageStatus.SENT,
    )


def test_an_unknown_or_inactive_address_gets_the_same_answer_and_no_email(
    api, mailbox, provider, django_capture_on_commit_callbacks
):
    inactive = UserFactory(provider=provider, is_active=False)

    unknown = ask(api, "nobody@example.com", django_capture_on_commit_callbacks)
    deactivated = ask(api, inactive.email, django_capture_on_commit_callbacks)

    assert unknown == deactivated
    assert unknown[0] == 202
    assert mailbox.received == []
    assert not Message.objects.exists()


def test_the_link_sets_a_password_once_and_the_old_one_stops_working(
    api, mailbox, user, django_capture_on_commit_callbacks
):
    ask(api, user.email, django_capture_on_commit_callbacks)
    _, uid, token = link_in(mailbox)

    first = api.post(
        "/api/auth/password-reset/confirm",
        {"uid": uid, "token": token, "password": NEW_PASSWORD},
        format="json",
    )
    again = api.post(
        "/api/auth/password-reset/confirm",
        {"uid": uid, "token": token, "password": "another-passphrase-8"},
        format="json",
    )

    user.refresh_from_db()
    assert first.status_code == 204
    assert (again.status_code, again.json()["code"]) == (400, "link_invalid")
    assert user.check_password(NEW_PASSWORD) and not user.check_password(PASSWORD)
    assert AuditLog.objects.filter(action="password_set", object_id=str(user.pk)).count() == 1


def test_an_expired_link_is_refused(
    api, mailbox, user, time_machine, settings, django_capture_on_commit_callbacks
):
    time_machine.move_to(NOW)
    ask(api, user.email, django_capture_on_commit_callbacks)
    _, uid, token = link_in(mailbox)
    time_machine.shift(timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 60))

    response = api.post(
        "/api/auth/password-reset/confirm",
        {"uid": uid, "token": token, "password": NEW_PASSWORD},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["detail"] == (
        'This link has expired or was already used. Ask for a new one with "Forgot password".'
    )
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_a_weak_password_is_refused_with_the_validators_reasons(
    api, mailbox, user, django_capture_on_commit_callbacks
):
    ask(api, user.email, django_capture_on_commit_callbacks)
    _, uid, token = link_in(mailbox)

    response = api.post(
        "/api/auth/password-reset/confirm",
        {"uid": uid, "token": token, "password": "12345678"},
        format="json",
    )

    body = response.json()
    assert response.status_code == 400
    assert body["fields"]["password"] == [
        "This password is too short. It must contain at least 10 characters. This password is too common. "
        "This password is entirely numeric."
    ]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)  # the link still works for a better password


def test_asking_too_often_for_one_address_is_throttled_whether_or_not_it_has_an_account(
    api, user, django_capture_on_commit_callbacks
):
    answers = [ask(api, "someone@example.com", django_capture_on_commit_callbacks)[0] for _ in range(4)]

    assert answers == [202, 202, 202, 429]


def test_the_forgot_password_page_answers_the_same_and_the_link_sets_the_password(
    mailbox, user, django_capture_on_commit_callbacks
):
    browser = Client()
    with django_capture_on_commit_callbacks(execute=True):
        known = browser.post("/forgot-password", {"email": user.email})
    unknown = browser.post("/forgot-password", {"email": "nobody@example.com"})
    path, uid, _ = link_in(mailbox)

    opened = browser.get(path)  # the token moves into the session, out of the address
    form = browser.get(opened["Location"])
    mismatch = browser.post(
        opened["Location"], {"password": NEW_PASSWORD, "password_again": "something-else-9"}
    )
    done = browser.post(opened["Location"], {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    reused = Client().get(path, follow=True)

    assert "is on its way" in known.content.decode() and "is on its way" in unknown.content.decode()
    assert opened.status_code == 302 and opened["Location"] == f"/set-password/{uid}/set"
    assert form.status_code == 200 and user.email in form.content.decode()
    assert mismatch.status_code == 400
    assert "The two passwords differ" in mismatch.content.decode()
    assert done.status_code == 302 and done["Location"] == f"/sign-in?email={user.email.replace('@', '%40')}"
    assert reused.status_code == 400
    assert "This link has expired or was already used." in reused.content.decode()
    assert User.objects.get(pk=user.pk).check_password(NEW_PASSWORD)
