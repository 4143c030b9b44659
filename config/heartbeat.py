"""Each Celery worker's heartbeat, which `/readyz` reads to tell whether any worker is alive.

A consumer bootstep writes the worker's name and the time into a sorted set in the broker's Redis,
one per queue it consumes, every `INTERVAL_SECONDS` from the worker's own event loop: a worker that
stops consuming stops beating. It removes itself on a clean stop; a killed worker's entry simply
grows old. Celery's own heartbeats are events, sent only with gossip on and read by a live receiver,
so they cannot answer a web request in a few milliseconds.
"""

import logging
import time

import redis
from celery import Celery, bootsteps

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 15
# A worker whose newest heartbeat is older than this counts as gone (several beats missed).
FRESH_SECONDS = 60
# Entries of workers gone this long are dropped, so the set holds only the recent ones.
FORGET_AFTER_SECONDS = 24 * 3600
TIMEOUT_SECONDS = 1


def key_for(queue: str) -> str:
    return f"worker-heartbeats:{queue}"


def broker_redis(app: Celery) -> redis.Redis:
    """A client of the broker's Redis that gives up within a second, for beats and for probes."""
    return redis.Redis.from_url(
        app.conf.broker_write_url or app.conf.broker_url,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
    )


def newest_age(client: redis.Redis, queue: str) -> float | None:
    """Seconds since the newest heartbeat of a worker consuming `queue`; None when there is none."""
    newest = client.zrevrange(key_for(queue), 0, 0, withscores=True)
    return time.time() - newest[0][1] if newest else None


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Started with the worker's consumer, once it is connected to the broker; stopped with it."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: object, **kwargs: object) -> None:
        super().__init__(parent, **kwargs)
        self.timer_entry = None
        self.client: redis.Redis | None = None
        self.queues: list[str] = []
        self.hostname = ""

    def start(self, consumer: object) -> None:
        self.client = broker_redis(consumer.app)
        self.queues = sorted(consumer.app.amqp.queues.consume_from)
        self.hostname = consumer.hostname
        self.beat()
        self.timer_entry = consumer.timer.call_repeatedly(INTERVAL_SECONDS, self.beat)

    def stop(self, consumer: object) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
        if self.client is None:
            return
        try:
            with self.client.pipeline() as pipe:
                for queue in self.queues:
                    pipe.zrem(key_for(queue), self.hostname)
                pipe.execute()
        except redis.RedisError as problem:
            logger.warning("worker heartbeat not removed (it will grow old instead): %s", problem)

    shutdown = stop

    def beat(self) -> None:
        now = time.time()
        try:
            with self.client.pipeline() as pipe:
                for queue in self.queues:
                    pipe.zadd(key_for(queue), {self.hostname: now})
                    pipe.zremrangebyscore(key_for(queue), "-inf", now - FORGET_AFTER_SECONDS)
                pipe.execute()
        except redis.RedisError as problem:
            # The broker is unreachable: the worker cannot take tasks either, and readyz says so.
            logger.warning("worker heartbeat not recorded: %s", problem)
