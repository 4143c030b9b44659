import logging

from config import context


class RequestContextFilter(logging.Filter):
    """Adds the request (or task) id to every log record, '-' outside of one."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = context.current().request_id or "-"
        return True
