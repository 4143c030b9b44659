"""Prometheus metrics at `/metrics`, for the operator (every provider's figures together).

Requests are counted by django-prometheus's middleware, by view (route name), method and status. In
gunicorn's multiprocess mode (PROMETHEUS_MULTIPROC_DIR set) every process writes its counts to that
folder and a scrape adds them up (`config.gunicorn_hooks` removes a dead process's live gauges).

The business figures are read from the database at scrape time rather than counted where they
happen: payments, runs, questions and e-mails are mostly made by Celery workers, whose in-memory
counters no scrape of the web would see, and which restart. Each is one grouped aggregate.
The queue depth is the length of the Celery queue's Redis lists.

Scrapes present `Authorization: Bearer <METRICS_TOKEN>`; without METRICS_TOKEN set, `/metrics` is off.
"""

import logging
import os
import secrets
from collections.abc import Iterator

import redis
from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from accounts.models import Message
from auditing.models import AIQuery
from config import heartbeat
from config.celery import app as celery_app
from config.errors import error_body
from invoicing.models import BillingRun, BillingRunStatus, Payment

logger = logging.getLogger(__name__)

# kombu's Redis transport keeps a queue's messages of priority 3, 6 and 9 in lists of their own.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
_RUN_COUNTS = ("total", "done", "issued", "already_billed", "skipped", "failed")


class BusinessCollector:
    """What the product has done, computed from the database when scraped."""

    def collect(self) -> Iterator[Metric]:
        yield from self._payments()
        yield from self._billing_runs()
        yield from self._ai_questions()
        yield from self._messages()

    def _payments(self) -> Iterator[Metric]:
        count = CounterMetricFamily("billing_payments", "Payments posted, by method.", labels=["method"])
        amount = CounterMetricFamily(
            "billing_payments_amount", "Money received in payments, by method.", labels=["method"]
        )
        rows = Payment.objects.values("method__code").annotate(n=Count("id"), amount=Sum("amount"))
        for row in rows.order_by("method__code"):
            count.add_metric([row["method__code"]], row["n"])
            amount.add_metric([row["method__code"]], float(row["amount"]))
        yield count
        yield amount

    def _billing_runs(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("billing_runs", "Billing runs, by status.", labels=["status"])
        by_status = dict(BillingRun.objects.values_list("status").annotate(n=Count("id")))
        for status in BillingRunStatus.values:
            runs.add_metric([status], by_status.get(status, 0))
        yield runs
        # The running runs' progress: how many of their connections are done, out of their total.
        running = BillingRun.objects.filter(status=BillingRunStatus.RUNNING).aggregate(
            **{name: Sum(name) for name in _RUN_COUNTS}
        )
        progress = GaugeMetricFamily(
            "billing_runs_running_connections",
            "Connections of the running billing runs: to bill (total) and what became of those done.",
            labels=["outcome"],
        )
        for name in _RUN_COUNTS:
            progress.add_metric([name], running[name] or 0)
        yield progress
        failed = BillingRun.objects.aggregate(failed=Sum("failed"))["failed"] or 0
        yield CounterMetricFamily(
            "billing_run_connection_failures",
            "Connections a billing run failed to bill, all runs.",
            value=failed,
        )

    def _ai_questions(self) -> Iterator[Metric]:
        questions = GaugeMetricFamily(
            "billing_ai_questions",
            "AI questions asked, by status (refused: refused by the checks).",
            labels=["status"],
        )
        for status, n in AIQuery.objects.values_list("status").annotate(n=Count("id")).order_by("status"):
            questions.add_metric([status], n)
        yield questions

    def _messages(self) -> Iterator[Metric]:
        messages = GaugeMetricFamily(
            "billing_messages", "E-mails, by status (sent, failed, ...).", labels=["status"]
        )
        for status, n in Message.objects.values_list("status").annotate(n=Count("id")).order_by("status"):
            messages.add_metric([status], n)
        yield messages


class QueueCollector:
    """Tasks waiting in the Celery queue (none in the embedded default, which runs them in process)."""

    def collect(self) -> Iterator[Metric]:
        if celery_app.conf.task_always_eager:
            return
        queue = celery_app.conf.task_default_queue
        try:
            with heartbeat.broker_redis(celery_app) as client, client.pipeline() as pipe:
                for suffix in _PRIORITY_SUFFIXES:
                    pipe.llen(queue + suffix)
                depth = sum(pipe.execute())
        except redis.RedisError as problem:
            logger.warning("queue depth not read, the broker is unreachable: %s", problem)
            return
        gauge = GaugeMetricFamily(
            "billing_queue_depth", "Tasks waiting in the Celery queue.", labels=["queue"]
        )
        gauge.add_metric([queue], depth)
        yield gauge


FIGURES = CollectorRegistry()
FIGURES.register(BusinessCollector())
FIGURES.register(QueueCollector())


def _process_metrics() -> bytes:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def _authorized(request: HttpRequest) -> bool:
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return secrets.compare_digest(offered.encode(), settings.METRICS_TOKEN.encode())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN:
        return JsonResponse(
            error_body("Metrics are off: set METRICS_TOKEN to turn them on.", "metrics_off"), status=404
        )
    if not _authorized(request):
        response = JsonResponse(
            error_body("Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.", "not_authenticated"),
            status=401,
        )
        response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(_process_metrics() + generate_latest(FIGURES), content_type=CONTENT_TYPE_LATEST)
