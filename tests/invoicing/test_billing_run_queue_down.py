"""Starting a billing run while the task queue (the Celery broker) is down: refused with a 503 that
says what to do, and nothing stored; or, when the broker falls over between the commit and the send,
accepted and left to the reconciler. Never a 500, never a run no one will pick up."""

import logging
from types import SimpleNamespace

import pytest
from kombu.exceptions import OperationalError

from accounts.roles import Role
from invoicing import tasks
from invoicing.models import BillingRun, BillingRunStatus, Invoice
from tests.factories import billable_connection

pytestmark = pytest.mark.django_db

RUNS = "/api/billing-runs"


def broker_refuses(*args: object) -> None:
    raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_a_billing_run_is_refused_with_503_and_nothing_stored_while_the_broker_is_down(
    as_role, super_creator, flat_provider, broker_down
):
    billable_connection(flat_provider)

    response = as_role(super_creator, Role.SUPER_CREATOR).post(RUNS, {"month": "2024-01"}, format="json")

    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert response.json()["code"] == "queue_unavailable"
    assert "Nothing was saved: try again in a minute" in response.json()["detail"]
    assert not BillingRun.objects.exists()


def test_admin_refuses_a_billing_run_at_its_form_while_the_broker_is_down(
    client, flat_provider, admin_user, broker_down
):
    client.force_login(admin_user)

    response = client.post("/admin/invoicing/billingrun/add/", {"month": "2024-01-15", "_save": "Save"})

    assert response.status_code == 200
    assert "task queue cannot be reached just now" in response.content.decode()
    assert not BillingRun.objects.exists()


def test_a_run_whose_chunks_cannot_be_sent_after_it_is_saved_is_accepted_and_left_to_the_reconciler(
    as_role, super_creator, flat_provider, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    billable_connection(flat_provider)
    monkeypatch.setattr(tasks, "bill_chunk", SimpleNamespace(delay=broker_refuses))

    with django_capture_on_commit_callbacks(execute=True), caplog.at_level(logging.WARNING):
        response = as_role(super_creator, Role.SUPER_CREATOR).post(RUNS, {"month": "2024-01"}, format="json")

    run = BillingRun.objects.get()
    assert response.status_code == 202
    assert (response.json()["runId"], response.json()["status"]) == (run.pk, BillingRunStatus.RUNNING)
    assert run.dispatched_at is None  # the reconciler sends its chunks (test_billing_run_reconciler)
    assert f"billing run {run.pk} not sent, the task queue is unreachable" in caplog.text
    assert not Invoice.objects.exists()
