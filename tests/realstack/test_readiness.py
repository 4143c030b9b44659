"""/readyz on the real stack: 200 with PostgreSQL, Redis and a worker up; 503 naming what is down when
PostgreSQL is unreachable, Redis is stopped, or no worker has beaten its heart within the minute."""

import signal
import socket
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from config import heartbeat
from config.celery import app as celery_app
from tests.realstack.conftest import wait_until

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


def readiness(client) -> tuple[int, dict[str, dict[str, str]]]:
    response = client.get("/readyz")
    return response.status_code, response.json()["checks"]


def ready(client) -> bool:
    return readiness(client)[0] == 200


def test_with_postgresql_redis_and_a_worker_up_readyz_answers_200(client, celery_worker):
    wait_until(lambda: ready(client), seconds=30, message="readyz did not answer 200 with a worker up")

    status, checks = readiness(client)

    assert status == 200
    assert checks["database"] == {"status": "ok", "reason": "postgresql answers"}
    assert checks["migrations"] == {"status": "ok", "reason": "all applied"}
    assert (checks["cache"]["status"], checks["broker"]["status"]) == ("ok", "ok")
    assert checks["worker"]["status"] == "ok"
    assert checks["worker"]["reason"].startswith("heartbeat ")


def test_with_postgresql_unreachable_readyz_answers_503_naming_the_database(client, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", closed_port)
    connection.close()

    status, checks = readiness(client)
    monkeypatch.undo()
    connection.close()

    assert status == 503
    assert checks["database"] == {"status": "failed", "reason": "unreachable (OperationalError)"}
    assert checks["migrations"] == {"status": "failed", "reason": "not checked: the database is unreachable"}
    assert checks["cache"]["status"] == "ok"


def test_with_redis_stopped_readyz_answers_503_naming_the_cache_and_the_broker(
    client, own_broker, workers, settings
):
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": own_broker.url(1)},
    }
    workers.start(broker_url=own_broker.url())
    wait_until(lambda: ready(client), seconds=30, message="readyz did not answer 200 with Redis up")

    own_broker.stop()
    status, checks = readiness(client)

    assert status == 503
    assert checks["cache"] == {"status": "failed", "reason": "unreachable (ConnectionError)"}
    assert checks["broker"] == {"status": "failed", "reason": "unreachable (ConnectionError)"}
    assert checks["database"]["status"] == "ok"


def test_with_the_worker_stopped_readyz_answers_503_naming_the_worker(client, workers):
    # A worker an earlier test killed (no shutdown) left a heartbeat that counts for a minute.
    queue = celery_app.conf.task_default_queue
    heartbeat.broker_redis(celery_app).delete(heartbeat.key_for(queue))
    worker = workers.start()
    wait_until(lambda: ready(client), seconds=30, message="readyz did not answer 200 with a worker up")

    worker.terminate()  # a warm shutdown: the worker takes its heartbeat away
    worker.wait(timeout=30)
    status, checks = readiness(client)

    assert status == 503
    assert checks["worker"] == {
        "status": "failed",
        "reason": f"no worker has recorded a heartbeat for the queue {celery_app.conf.task_default_queue!r}",
    }
    assert (checks["database"]["status"], checks["broker"]["status"]) == ("ok", "ok")


def test_a_killed_workers_heartbeat_counts_for_a_minute_only(client, workers, time_machine):
    worker = workers.start()
    wait_until(lambda: ready(client), seconds=30, message="readyz did not answer 200 with a worker up")

    worker.send_signal(signal.SIGKILL)  # no shutdown: its last heartbeat stays behind
    worker.wait(timeout=30)
    just_after = readiness(client)
    time_machine.move_to(timezone.now() + timedelta(minutes=2))
    two_minutes_later = readiness(client)

    assert just_after[0] == 200
    assert two_minutes_later[0] == 503
    assert two_minutes_later[1]["worker"]["status"] == "failed"
    assert two_minutes_later[1]["worker"]["reason"].startswith("no worker heartbeat for 1")
