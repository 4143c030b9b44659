import os
import subprocess
import sys
import time
import uuid
from urllib.parse import urlparse, urlunparse

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app

pytestmark = pytest.mark.realstack


@pytest.fixture
def celery_worker(transactional_db):
    """A real `celery worker` process on Redis, reading and writing this test's PostgreSQL database.

    Tests using it commit their rows (transactional_db) so the worker can see them.
    """
    assert connection.vendor == "postgresql", "the real-stack suite must run on PostgreSQL"
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "the real-stack suite must use Redis"
    test_db_url = urlunparse(
        urlparse(os.environ["DATABASE_URL"])._replace(path=f"/{connection.settings_dict['NAME']}")
    )
    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "-n",
            name,
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        env={**os.environ, "DATABASE_URL": test_db_url, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
    )
    celery_app.conf.task_always_eager = False
    try:
        deadline = time.monotonic() + 60
        while not celery_app.control.ping(destination=[name], timeout=1):
            assert worker.poll() is None, "the Celery worker exited on start"
            assert time.monotonic() < deadline, "the Celery worker did not answer a ping within 60 s"
        yield worker
    finally:
        celery_app.conf.task_always_eager = True
        worker.terminate()
        worker.wait(timeout=30)


def wait_until(condition, *, seconds: float = 30, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)
