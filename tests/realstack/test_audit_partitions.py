"""The audit log's monthly partitions on PostgreSQL: each row lands in its month's partition, a month's
rows are read without touching the others, the trail verifies across partitions, the rows stay
append-only, the AI reader never reads a partition around its scoped view, and the daily job makes
the months ahead (never a month whose rows already wait in the default partition)."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from auditing.models import AuditLog
from auditing.partitions import DEFAULT_PARTITION, audit_partitions_ahead, month_partition, partition_names
from auditing.services import Entry, audit_append, audit_verify
from auditing.tasks import audit_partitions_ahead as audit_partitions_ahead_task

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

MAY_2031 = datetime(2031, 5, 10, 9, 30, tzinfo=UTC)


def appended(provider_id: int, label: str) -> AuditLog:
    with transaction.atomic():
        audit_append(
            [Entry("update", provider_id, "billing.customer", "1", label, new_values={"name": label})]
        )
    return AuditLog.objects.filter(object_repr=label).get()


def partition_of(row: AuditLog) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM auditing_auditlog WHERE id = %s", [row.pk])
        return cursor.fetchone()[0]


def partitions() -> set[str]:
    with connection.cursor() as cursor:
        return partition_names(cursor)


def scanned_tables(query: str, params: list) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {query}", params)
        plan = cursor.fetchone()[0]
    found, nodes = set(), [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        nodes.extend(node.get("Plans", []))
    return found


def test_rows_land_in_their_months_partition_and_a_month_is_read_alone(provider):
    audit_partitions_ahead(today=MAY_2031.date())
    assert audit_partitions_ahead(today=MAY_2031.date()) == []  # each month made once
    assert {month_partition(date(2031, month, 1)) for month in (5, 6, 7, 8)} <= partitions()
    with time_machine.travel(MAY_2031, tick=False):
        may = appended(provider.pk, "in May")
    with time_machine.travel(datetime(2031, 7, 2, tzinfo=UTC), tick=False):
        july = appended(provider.pk, "in July")

    assert (partition_of(may), partition_of(july)) == (
        "auditing_auditlog_y2031m05",
        "auditing_auditlog_y2031m07",
    )
    may_only = scanned_tables(
        "SELECT * FROM auditing_auditlog WHERE provider_id = %s AND created_at >= %s AND created_at < %s",
        [provider.pk, datetime(2031, 5, 1, tzinfo=UTC), datetime(2031, 6, 1, tzinfo=UTC)],
    )
    assert may_only == {"auditing_auditlog_y2031m05"}
    assert audit_verify(chain=provider.pk) == []


def test_a_row_of_a_month_without_a_partition_waits_in_the_default_one_and_stays_there(provider):
    with time_machine.travel(datetime(2040, 1, 15, tzinfo=UTC), tick=False):
        early = appended(provider.pk, "before its month was made")
    assert partition_of(early) == DEFAULT_PARTITION

    made = audit_partitions_ahead(today=date(2040, 1, 15))

    assert month_partition(date(2040, 1, 1)) not in made  # its row would have to move: left as it is
    assert month_partition(date(2040, 2, 1)) in made
    assert partition_of(early) == DEFAULT_PARTITION
    with time_machine.travel(datetime(2040, 2, 3, tzinfo=UTC), tick=False):
        later = appended(provider.pk, "in a month made ahead")
    assert partition_of(later) == month_partition(date(2040, 2, 1))
    assert audit_verify(chain=provider.pk) == []


def test_rows_in_a_partition_are_append_only_and_the_ai_reader_cannot_read_one(provider):
    with time_machine.travel(MAY_2031, tick=False):
        audit_partitions_ahead(today=MAY_2031.date())
        row = appended(provider.pk, "kept")
    partition = partition_of(row)
    assert partition == "auditing_auditlog_y2031m05"
    with connection.cursor() as cursor:
        for statement in (
            "UPDATE auditing_auditlog_y2031m05 SET action = 'x' WHERE id = %s",
            "DELETE FROM auditing_auditlog_y2031m05 WHERE id = %s",
        ):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                cursor.execute(statement, [row.pk])
        cursor.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", [settings.AI_QUERY_DB_USER, partition])
        assert cursor.fetchone()[0] is False


def test_the_daily_job_makes_this_month_and_the_next_three(provider):
    with time_machine.travel(datetime(2035, 11, 20, tzinfo=UTC), tick=False):
        audit_partitions_ahead_task()
    wanted = {month_partition(date(*month, 1)) for month in ((2035, 11), (2035, 12), (2036, 1), (2036, 2))}
    assert wanted <= partitions()
    assert month_partition(date(2036, 3, 1)) not in partitions()
