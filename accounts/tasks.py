"""Accounts' Celery tasks: the daily purge of sign-in records, and sending e-mail messages.

Sending is a thin edge over `accounts.services.message_send`: a transient failure (the mail server
unreachable, busy, or answering 4xx) is raised as `TryAgain`, which Celery's autoretry turns into a
retry with exponential backoff, a bounded number of times; the last try fails the message instead.
"""

import logging

from celery import shared_task

from accounts import services
from accounts.messaging import MESSAGE_MAX_RETRIES, MESSAGE_RETRY_BACKOFF, MESSAGE_RETRY_BACKOFF_MAX

logger = logging.getLogger(__name__)


class TryAgain(Exception):
    """A delivery failed for now; the message is recorded as retrying."""


@shared_task(name="accounts.purge_expired_auth_records")
def purge_expired_auth_records() -> None:
    """Daily: expired selection tickets and refresh tokens grant nothing; drop them."""
    result = services.auth_records_purge()
    logger.info("purged %s selection tickets and %s refresh tokens", result.tickets, result.tokens)


@shared_task(
    bind=True,
    name="accounts.send_message",
    autoretry_for=(TryAgain,),
    retry_backoff=MESSAGE_RETRY_BACKOFF,
    retry_backoff_max=MESSAGE_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=MESSAGE_MAX_RETRIES,
    soft_time_limit=120,
    time_limit=150,
)
def send_message(self, message_id: int) -> str:
    outcome = services.message_send(
        message_id=message_id, final_attempt=self.request.retries >= MESSAGE_MAX_RETRIES
    )
    if outcome.delivery is services.Delivery.RETRY:
        raise TryAgain(outcome.reason)
    return outcome.delivery.value


@shared_task(name="accounts.send_messages")
def send_messages(message_ids: list[int]) -> None:
    """Fan out: one task per message, so each is retried on its own. Sent by the billing run's chunks,
    so a run hands over a thousand bills' e-mails in one task and goes on billing."""
    for message_id in message_ids:
        send_message.delay(message_id)


@shared_task(name="accounts.reconcile_messages")
def reconcile_messages() -> None:
    """Every few minutes (celery beat): send again the messages whose task was lost."""
    again, given_up = services.messages_reconcile()
    if again or given_up:
        logger.warning("messages: %s sent again, %s given up", again, given_up)
