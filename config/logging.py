import logging

from config import context


class RequestContextFilter(logging.Filter):
    """Adds the request (or task) id to every log record, '-' outside of one, and who is acting:
    the user's id, their role and their provider (None when no one is; role "system" in a task).

    Django's line about a refused or failed request ("django.request") is written after the request's
    middleware is done with it; it names the request, and the request keeps who acted in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = getattr(getattr(record, "request", None), "acting", None) or context.current()
        record.request_id = current.request_id or "-"
        record.user_id = current.actor_id
        record.role = current.role or None
        record.provider_id = current.provider_id
        return True
