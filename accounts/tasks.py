import logging

from celery import shared_task

from accounts.services import auth_records_purge

logger = logging.getLogger(__name__)


@shared_task(name="accounts.purge_expired_auth_records")
def purge_expired_auth_records() -> None:
    """Daily: expired selection tickets and refresh tokens grant nothing; drop them."""
    result = auth_records_purge()
    logger.info("purged %s selection tickets and %s refresh tokens", result.tickets, result.tokens)
