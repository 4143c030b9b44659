"""Handing work to the Celery workers, and what a request answers while their broker is unreachable.

Work is stored first and sent once its transaction commits, so a worker never looks for a row that is
not there yet. A request that would start work asks the broker first (`require_queue`): while it is
down the request is refused with a 503 and nothing is stored. A send that fails after the commit all
the same (the broker went down in between) is logged and left to the app's reconciler (celery beat,
every few minutes), which sends again whatever is unfinished: work is never half-stored, nor lost.
"""

import logging
from collections.abc import Callable

from django.db import transaction
from kombu.exceptions import OperationalError
from rest_framework import status

from config.celery import app
from config.errors import DomainError

logger = logging.getLogger(__name__)

# What kombu raises, whatever the transport, when the broker cannot be reached or refuses a message.
BROKER_DOWN = (OperationalError,)
PROBE_SECONDS = 2
RETRY_AFTER_SECONDS = 60


class QueueUnavailable(DomainError):
    code = "queue_unavailable"
    status = status.HTTP_503_SERVICE_UNAVAILABLE
    retry_after = RETRY_AFTER_SECONDS


def require_queue(work: str) -> None:
    """Refuse `work` (a phrase: "A billing run") before anything is stored while the broker is down."""
    if app.conf.task_always_eager:
        return  # the embedded default: tasks run in the calling process, no broker involved
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0, timeout=PROBE_SECONDS)
    except BROKER_DOWN as problem:
        logger.warning("task queue unreachable, refusing work: %s", problem)
        raise QueueUnavailable(
            f"{work} needs the background workers, and their task queue cannot be reached just now. "
            f"Nothing was saved: try again in a minute. If this keeps happening, ask your administrator "
            f"to check Redis and the Celery workers."
        ) from problem


def send_on_commit(send: Callable[[], object], *, sent: Callable[[], object], what: str) -> None:
    """Call `send` once the current transaction commits (at once outside one), then `sent`.

    A broker that cannot be reached then is logged, not raised: the work is committed already, and
    its reconciler sends it again; raising would answer a 500 for work that will be done."""

    def after_commit() -> None:
        try:
            send()
        except BROKER_DOWN as problem:
            logger.warning(
                "%s not sent, the task queue is unreachable; the reconciler will: %s", what, problem
            )
            return
        sent()

    transaction.on_commit(after_commit)
