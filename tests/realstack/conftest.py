import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Model
from psycopg import sql

from config.celery import app as celery_app

pytestmark = pytest.mark.realstack


def start_worker(*, broker_url: str | None = None) -> subprocess.Popen:
    """A real `celery worker` process on Redis (the suite's broker, or `broker_url`), reading and writing
    this test's PostgreSQL database; returned once it answers a ping. The test's Celery app must use
    the same broker, and send rather than run its tasks (`task_always_eager` off)."""
    assert connection.vendor == "postgresql", "the real-stack suite must run on PostgreSQL"
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "the real-stack suite must use Redis"
    test_db_url = urlunparse(
        urlparse(os.environ["DATABASE_URL"])._replace(path=f"/{connection.settings_dict['NAME']}")
    )
    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    env = {**os.environ, "DATABASE_URL": test_db_url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
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
        env=env,
    )
    deadline = time.monotonic() + 60
    try:
        # A connection of its own: a pooled one may be to a Redis restarted since (the sends reconnect).
        with celery_app.connection_for_write() as broker:
            while not celery_app.control.ping(destination=[name], timeout=1, connection=broker):
                assert worker.poll() is None, "the Celery worker exited on start"
                assert time.monotonic() < deadline, "the Celery worker did not answer a ping within 60 s"
    except BaseException:
        worker.terminate()
        worker.wait(timeout=30)
        raise
    return worker


@pytest.fixture
def celery_worker(transactional_db):
    """A real worker (`start_worker`); tests using it commit their rows (transactional_db) so the
    worker can see them."""
    celery_app.conf.task_always_eager = False
    worker = None
    try:
        worker = start_worker()
        yield worker
    finally:
        celery_app.conf.task_always_eager = True
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)


@pytest.fixture
def workers(transactional_db):
    """Real workers started when the test says (`workers.start()`, `start_worker`'s arguments); those
    still running at the end are stopped. Killing one mid-task is the test's to do."""
    started: list[subprocess.Popen] = []

    def start(**options: str) -> subprocess.Popen:
        started.append(start_worker(**options))
        return started[-1]

    celery_app.conf.task_always_eager = False
    try:
        yield SimpleNamespace(start=start)
    finally:
        celery_app.conf.task_always_eager = True
        for worker in started:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)


class OwnRedis:
    """A `redis-server` of the test's own, on a free port, without persistence: stopping it loses
    whatever it held, as a restarted Redis without a disk does. The machine's Redis is never touched."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self._accepts, seconds=10, message="redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False


@pytest.fixture
def own_redis():
    redis = OwnRedis()
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def own_broker(own_redis):
    """The test's Celery app sends through the test's own Redis (database 0), which the test may stop
    and restart; workers started with `broker_url=own_redis.url()` read from it."""
    conf = celery_app.conf
    # The write and read addresses, since CELERY_BROKER_URL in the environment wins over `broker_url`;
    # broker connections are pooled once made: the pools are the suite's again afterwards.
    saved = (
        conf.get("broker_write_url"),
        conf.get("broker_read_url"),
        celery_app._pool,
        celery_app.amqp._producer_pool,
    )
    conf.broker_write_url = conf.broker_read_url = own_redis.url()
    celery_app._pool = celery_app.amqp._producer_pool = None
    try:
        yield own_redis
    finally:
        conf.broker_write_url, conf.broker_read_url, celery_app._pool, celery_app.amqp._producer_pool = saved


@contextmanager
def row_locked(row: Model) -> Iterator[None]:
    """Hold `row`'s lock from a connection of its own (as another transaction would) while the block
    runs: a task that locks that row waits, mid-transaction, until the block ends."""
    db, meta = connection.settings_dict, row._meta
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"], host=db["HOST"], port=db["PORT"]
    ) as holder:
        holder.execute(
            sql.SQL("SELECT 1 FROM {} WHERE {} = %s FOR UPDATE").format(
                sql.Identifier(meta.db_table), sql.Identifier(meta.pk.column)
            ),
            [row.pk],
        )
        yield
        holder.rollback()


def waiting_for_a_lock() -> bool:
    """Whether a session of this test's database waits for a row lock (a worker, mid-task)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def wait_until(condition, *, seconds: float = 120, message: str) -> None:
    """Waits for work of another process: a generous bound, as a busy machine (CI's two processes of
    tests, each with its workers, on two cores) slows every worker; a failing wait fails late only."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)
