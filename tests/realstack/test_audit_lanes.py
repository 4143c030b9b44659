"""The audit trail's lanes on PostgreSQL: writers of one provider append at the same time, each in a
lane no other transaction holds, and the trail still verifies; tampering in any lane shows."""

import threading

import pytest
from django.db import connection, transaction

from auditing.models import AuditLog, ChainHead
from auditing.services import Entry, audit_append, audit_verify
from tests.realstack.threads import run_together

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


def entry(provider_id: int, label: str) -> Entry:
    return Entry("update", provider_id, "billing.customer", "1", label, new_values={"name": label})


def held_append(provider_id: int, label: str, appended: threading.Barrier) -> None:
    """Append inside a transaction that stays open until every writer has appended: none of them
    may wait for another's commit."""
    with transaction.atomic():
        audit_append([entry(provider_id, f"{label} 1"), entry(provider_id, f"{label} 2")])
        appended.wait(timeout=20)
        audit_append([entry(provider_id, f"{label} 3")])  # its own lane again, never a wait


def tamper(statement: str, params: list) -> None:
    with transaction.atomic(), connection.cursor() as cursor:  # a superuser, around the trigger
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(statement, params)


def test_writers_holding_their_transactions_open_append_in_lanes_of_their_own(provider):
    writers = 4
    appended = threading.Barrier(writers)

    outcomes = run_together(
        [lambda n=n: held_append(provider.pk, f"writer {n}", appended) for n in range(writers)]
    )

    assert outcomes == [None] * writers
    lanes = set(
        AuditLog.objects.filter(provider=provider, object_type="billing.customer").values_list(
            "lane", flat=True
        )
    )
    assert len(lanes) == writers
    assert ChainHead.objects.filter(chain=provider.pk).count() >= writers
    for lane in lanes:  # each writer's three rows in one lane, in order
        labels = list(
            AuditLog.objects.filter(provider=provider, lane=lane, object_type="billing.customer")
            .order_by("id")
            .values_list("object_repr", flat=True)
        )
        assert [label[-1] for label in labels] == ["1", "2", "3"]
        assert len({label[:-2] for label in labels}) == 1
    assert audit_verify(chain=provider.pk) == []


def test_a_row_changed_moved_or_cut_from_any_lane_is_named(provider):
    appended = threading.Barrier(2)
    run_together([lambda n=n: held_append(provider.pk, f"writer {n}", appended) for n in range(2)])
    lane = AuditLog.objects.filter(provider=provider).order_by("-lane").values_list("lane", flat=True)[0]
    assert lane > 0
    rows = list(AuditLog.objects.filter(provider=provider, lane=lane).order_by("id"))

    tamper("UPDATE auditing_auditlog SET object_repr = 'edited' WHERE id = %s", [rows[1].pk])
    (found,) = audit_verify(chain=provider.pk)
    assert (found.row_id, found.lane, found.problem) == (
        rows[1].pk,
        lane,
        "this row was changed after it was written",
    )

    tamper(
        "UPDATE auditing_auditlog SET object_repr = %s, lane = 0 WHERE id = %s",
        [rows[1].object_repr, rows[1].pk],
    )
    problems = {(found.row_id, found.problem) for found in audit_verify(chain=provider.pk)}
    assert (rows[2].pk, "the row before it was changed or removed") in problems

    tamper("UPDATE auditing_auditlog SET lane = %s WHERE id = %s", [lane, rows[1].pk])
    assert audit_verify(chain=provider.pk) == []
    tamper("DELETE FROM auditing_auditlog WHERE id = %s", [rows[-1].pk])
    (found,) = audit_verify(chain=provider.pk)
    assert (found.row_id, found.lane, found.problem) == (0, lane, "rows at the end of the chain were removed")
