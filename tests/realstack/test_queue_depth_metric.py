"""The queue depth a scrape of /metrics reads is the number of tasks waiting in the broker's Redis."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts import tasks
from config.celery import app as celery_app

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


def test_tasks_waiting_for_a_worker_are_the_queue_depth(client, own_broker, settings):
    settings.METRICS_TOKEN = "scrape-token-for-tests"
    celery_app.conf.task_always_eager = False
    try:
        for _ in range(3):
            tasks.purge_expired_auth_records.delay()  # no worker reads the test's own Redis
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-for-tests")
    finally:
        celery_app.conf.task_always_eager = True

    depth = {
        sample.labels["queue"]: sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
        if sample.name == "billing_queue_depth"
    }
    assert depth == {celery_app.conf.task_default_queue: 3}
