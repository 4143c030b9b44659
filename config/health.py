"""Liveness and readiness for load balancers and orchestrators: no sign-in, no secrets in the answer.

`/healthz` says the process answers and touches nothing else. `/readyz` checks what a request or a
task needs (the database and its migrations, the cache, the broker, a worker's heartbeat) and answers
503 when any fails, naming it. The Redis checks give up within a second; the database's is as quick
as its connection (a refused port at once, a host that does not answer after libpq's connect_timeout).
A failure's details go to the log; the answer says only what failed, in general terms (no address,
user or password).
"""

import logging
from collections.abc import Callable

import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config import heartbeat
from config.celery import app as celery_app

logger = logging.getLogger(__name__)

IN_PROCESS = "not used (tasks run in process)"


class CheckFailed(Exception):
    """A dependency is not ready; the message is the reason shown."""


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return f"{connection.vendor} answers"


def _migrations() -> str:
    # Every migration on disk, not only the latest of each app: one left out in between counts too.
    loader = MigrationLoader(connection)
    pending = sorted(set(loader.graph.nodes) - set(loader.applied_migrations))
    if pending:
        names = ", ".join(f"{app}.{name}" for app, name in pending[:5])
        raise CheckFailed(f"{len(pending)} migration(s) not applied: {names}")
    return "all applied"


def _cache() -> str:
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        return "not used (in-process cache)"
    cache.get("readyz-probe")  # a round trip to Redis, within the cache's own 1 s timeouts
    return "Redis answers"


def _broker() -> str:
    if celery_app.conf.task_always_eager:
        return IN_PROCESS
    with heartbeat.broker_redis(celery_app) as client:
        client.ping()
    return "Redis answers"


def _worker() -> str:
    if celery_app.conf.task_always_eager:
        return IN_PROCESS
    queue = celery_app.conf.task_default_queue
    with heartbeat.broker_redis(celery_app) as client:
        age = heartbeat.newest_age(client, queue)
    if age is None:
        raise CheckFailed(f"no worker has recorded a heartbeat for the queue {queue!r}")
    if age > heartbeat.FRESH_SECONDS:
        raise CheckFailed(
            f"no worker heartbeat for {int(age)} s (expected within {heartbeat.FRESH_SECONDS} s)"
        )
    return f"heartbeat {int(age)} s ago"


# Pending migrations are read from the database, so they are checked only when it answers.
CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "migrations": _migrations,
    "cache": _cache,
    "broker": _broker,
    "worker": _worker,
}


def _run(name: str, check: Callable[[], str]) -> dict[str, str]:
    try:
        return {"status": "ok", "reason": check()}
    except CheckFailed as failed:
        reason = str(failed)
    except DatabaseError as problem:
        logger.warning("readiness: %s failed: %s", name, problem)
        reason = f"unreachable ({type(problem).__name__})"
    except redis.RedisError as problem:
        logger.warning("readiness: %s failed: %s", name, problem)
        reason = f"unreachable ({type(problem).__name__})"
    return {"status": "failed", "reason": reason}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, str]] = {}
    for name, check in CHECKS.items():
        if name == "migrations" and checks["database"]["status"] != "ok":
            checks[name] = {"status": "failed", "reason": "not checked: the database is unreachable"}
            continue
        checks[name] = _run(name, check)
    ready = all(result["status"] == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "failed", "checks": checks}, status=200 if ready else 503
    )
