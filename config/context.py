"""Who is acting, in which role, for which provider, under which request id.

Set by the request middleware and the JWT authentication for web requests, and by each Celery task
for background work; read by the log filter and by the audit receivers. A context variable, so
threads and tasks never see one another's values.
"""

import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    actor_id: int | None = None
    role: str = ""
    provider_id: int | None = None


_current: ContextVar[RequestContext] = ContextVar("request_context", default=RequestContext())  # noqa: B039


def current() -> RequestContext:
    return _current.get()


def bind(**changes: object) -> Token[RequestContext]:
    """Replace some fields for the rest of this request or task; `reset` with the token to undo."""
    return _current.set(replace(_current.get(), **changes))


def reset(token: Token[RequestContext]) -> None:
    _current.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex
