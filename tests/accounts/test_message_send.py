"""Sending one e-mail message: through Django's SMTP backend to a real SMTP server (aiosmtpd in the test
process), retried with backoff while the server answers "try again later", failed for good when it
refuses, and sent once however often its task is delivered."""

from datetime import UTC, datetime, timedelta

import pytest
from celery.signals import task_retry

from accounts import services, tasks
from accounts.messaging import MESSAGE_MAX_ATTEMPTS, MESSAGE_RETRY_BACKOFF, MESSAGE_RETRY_BACKOFF_MAX
from accounts.models import Message, MessageKind, MessageStatus
from config.celery import app as celery_app
from tests.factories import UserFactory
from tests.smtp import free_port

pytestmark = pytest.mark.django_db
NOW = datetime(2024, 3, 1, 9, tzinfo=UTC)


@pytest.fixture
def user(provider):
    return UserFactory(provider=provider, name="Sana Tariq", email="sana@example.com")


@pytest.fixture
def reset(user, time_machine, django_capture_on_commit_callbacks):
    """A password reset message recorded, not sent yet (its task is held back), the clock frozen then."""
    time_machine.move_to(NOW, tick=False)
    with django_capture_on_commit_callbacks(execute=False):
        return services.message_queue(
            kind=MessageKind.PASSWORD_RESET,
            recipient=user.email,
            about=user,
            language="en",
            user=user,
            provider=user.provider,
        )


@pytest.fixture
def retries():
    """The countdowns Celery's autoretry chose, in order. Tasks run eagerly, as in the demo, but their
    errors are not raised to the caller: a retry runs at once, as a worker would run it after waiting."""
    chosen: list[float] = []
    propagates = celery_app.conf.task_eager_propagates
    celery_app.conf.task_eager_propagates = False

    def record(sender=None, reason=None, **_):
        chosen.append(reason.when)

    task_retry.connect(record, weak=False, dispatch_uid="test.retries")
    yield chosen
    task_retry.disconnect(dispatch_uid="test.retries")
    celery_app.conf.task_eager_propagates = propagates


def stored(message: Message) -> Message:
    message.refresh_from_db()
    return message


def test_a_message_arrives_with_its_text_and_html_parts_from_the_provider(mailbox, reset, user):
    outcome = tasks.send_message.delay(reset.pk).get()

    (received,) = mailbox.received
    assert outcome == "sent"
    assert received.rcpt_tos == ["sana@example.com"]
    assert received.subject == f"{user.provider.name}: set a new password"
    assert received.message["From"].addresses[0].display_name == user.provider.name
    assert str(received.message["Reply-To"]) == user.provider.email
    assert received.message["Auto-Submitted"] == "auto-generated"
    assert "Dear Sana Tariq," in received.text
    assert "/set-password/" in received.text
    assert '<html lang="en" dir="ltr">' in received.html
    assert "Choose a new password" in received.html
    message = stored(reset)
    assert (message.status, message.attempts, message.last_error) == (MessageStatus.SENT, 1, "")
    assert message.sent_at is not None


def test_a_busy_server_is_tried_again_with_backoff_until_it_accepts(mailbox, reset, retries):
    mailbox.refuse_next("DATA", "421 4.3.2 Service not available, closing channel")
    mailbox.refuse_next("RCPT", "451 4.7.1 Greylisted, try again later")

    tasks.send_message.delay(reset.pk)

    message = stored(reset)
    assert (message.status, message.attempts) == (MessageStatus.SENT, 3)
    assert len(mailbox.received) == 1
    # Exponential backoff from MESSAGE_RETRY_BACKOFF seconds, with jitter: at most 30 s, then 60 s.
    assert len(retries) == 2
    assert 0 <= retries[0] <= MESSAGE_RETRY_BACKOFF
    assert 0 <= retries[1] <= 2 * MESSAGE_RETRY_BACKOFF


def test_a_refused_recipient_fails_the_message_at_once_with_the_servers_reason(mailbox, reset, retries):
    mailbox.refuse_next("RCPT", "550 5.1.1 Mailbox does not exist")

    outcome = tasks.send_message.delay(reset.pk).get()

    message = stored(reset)
    assert outcome == "failed"
    assert (message.status, message.attempts) == (MessageStatus.FAILED, 1)
    assert message.last_error == "recipient refused: 550 5.1.1 Mailbox does not exist"
    assert "sana@example.com" not in message.last_error
    assert retries == []
    assert mailbox.received == []


def test_a_rejected_message_fails_without_a_retry(mailbox, reset, retries):
    mailbox.refuse_next("DATA", "554 5.6.0 Message rejected as spam")

    tasks.send_message.delay(reset.pk)

    message = stored(reset)
    assert (message.status, message.attempts, retries) == (MessageStatus.FAILED, 1, [])
    assert message.last_error == "refused: 554 5.6.0 Message rejected as spam"


def test_a_server_that_stays_unreachable_is_tried_a_bounded_number_of_times_then_fails(
    settings, reset, retries
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens: refused

    tasks.send_message.delay(reset.pk)

    message = stored(reset)
    assert (message.status, message.attempts) == (MessageStatus.FAILED, MESSAGE_MAX_ATTEMPTS)
    assert message.last_error.startswith("the mail server cannot be reached: ")
    assert len(retries) == MESSAGE_MAX_ATTEMPTS - 1
    assert all(0 <= countdown <= MESSAGE_RETRY_BACKOFF_MAX for countdown in retries)


def test_a_message_delivered_twice_to_the_workers_is_sent_once(mailbox, reset):
    first = tasks.send_message.delay(reset.pk).get()
    second = tasks.send_message.delay(reset.pk).get()

    assert (first, second) == ("sent", "skipped")
    assert len(mailbox.received) == 1
    assert stored(reset).attempts == 1


def test_a_message_about_a_row_that_is_gone_fails_with_the_reason(mailbox, reset):
    Message.objects.filter(pk=reset.pk).update(about_id=reset.about_id + 1000)

    tasks.send_message.delay(reset.pk)

    message = stored(reset)
    assert (message.status, message.last_error) == (
        MessageStatus.FAILED,
        "what it was about no longer exists",
    )
    assert mailbox.received == []


def test_the_reconciler_sends_again_a_message_whose_task_was_lost(
    mailbox, reset, time_machine, settings, django_capture_on_commit_callbacks
):
    time_machine.shift(timedelta(seconds=settings.MESSAGE_RESEND_AFTER_SECONDS + 1))

    with django_capture_on_commit_callbacks(execute=True):
        tasks.reconcile_messages.delay()

    assert stored(reset).status == MessageStatus.SENT
    assert len(mailbox.received) == 1


def test_the_reconciler_leaves_a_message_still_within_its_grace_and_a_retry_waiting_its_backoff(
    mailbox, reset, time_machine, settings
):
    Message.objects.filter(pk=reset.pk).update(status=MessageStatus.RETRYING, attempts=1)
    time_machine.shift(timedelta(seconds=settings.MESSAGE_RESEND_AFTER_SECONDS + 1))

    assert services.messages_reconcile() == (0, 0)
    assert mailbox.received == []


def test_the_reconciler_gives_up_on_a_message_tried_too_often(mailbox, reset, time_machine, settings):
    Message.objects.filter(pk=reset.pk).update(attempts=MESSAGE_MAX_ATTEMPTS, last_error="timed out")
    time_machine.shift(timedelta(seconds=settings.MESSAGE_RESEND_AFTER_SECONDS + 1))

    assert services.messages_reconcile() == (0, 1)
    message = stored(reset)
    assert (message.status, message.last_error) == (MessageStatus.FAILED, "timed out")
    assert mailbox.received == []


def test_many_messages_are_handed_over_in_one_fan_out_task_per_thousand(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.messages_dispatch(message_ids=list(range(1, 2501)))

    sent: list[list[int]] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks.send_messages, "delay", sent.append)
        for callback in callbacks:
            callback()

    assert len(callbacks) == 1
    assert [len(batch) for batch in sent] == [1000, 1000, 500]
    assert [pk for batch in sent for pk in batch] == list(range(1, 2501))
