"""The daily job that makes the audit log's partitions ahead (PostgreSQL: tests/realstack)."""

from datetime import date

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask

from auditing.partitions import audit_partitions_ahead, months

pytestmark = pytest.mark.django_db


def test_beat_makes_the_audit_partitions_ahead_every_night():
    job = PeriodicTask.objects.get(task="auditing.audit_partitions_ahead")

    assert job.enabled
    assert (job.crontab.minute, job.crontab.hour, job.crontab.day_of_month) == ("15", "1", "*")


def test_months_run_across_a_year_end():
    assert months(date(2026, 11, 20), date(2027, 2, 1)) == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
        date(2027, 2, 1),
    ]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite pass: one plain table")
def test_on_sqlite_the_log_is_one_table_and_the_job_makes_nothing():
    assert audit_partitions_ahead(today=date(2026, 12, 3)) == []
