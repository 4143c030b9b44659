"""No background work is lost, on the real stack (PostgreSQL, Redis, real Celery workers): a worker
killed with SIGKILL mid-task, or a Redis restarted with tasks queued, leaves a billing run or a
question that no worker will ever pick up (a killed worker's message waits for kombu's one-hour
visibility timeout; a restarted Redis without a disk has none). The reconciler, as celery beat runs
it every few minutes, sends them again, and they complete with no human action."""

import time
from datetime import date

import pytest

from accounts.roles import Role
from auditing.models import AIQuery, AIQueryStatus
from auditing.services import ai_query_submit
from auditing.tasks import answer_ai_query, reconcile_ai_queries
from auditing.tasks import dispatch as ask
from invoicing.models import BillingRun, BillingRunStatus, DocumentCounter, DocumentSeries, Invoice
from invoicing.selectors import pending_chunks
from invoicing.services import billing_run_start
from invoicing.tasks import dispatch, reconcile_billing_runs
from tests.factories import FlatTariffFactory, UserFactory, billable_connection
from tests.realstack.conftest import row_locked, wait_until, waiting_for_a_lock

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

JANUARY = date(2024, 1, 1)
STILL = 2  # seconds a test watches lost work stay lost before the reconciler comes


@pytest.fixture
def grace_over(settings):
    """The reconcilers' grace period is over for whatever the test left waiting."""
    settings.RECONCILE_GRACE_SECONDS = 0


@pytest.fixture
def three_connections(provider):
    FlatTariffFactory(provider=provider)
    return [billable_connection(provider) for _ in range(3)]


def run_of(provider) -> BillingRun:
    run, _ = billing_run_start(provider=provider, period=JANUARY, chunk_size=1)
    return run


def status_of(row) -> str:
    return type(row).objects.values_list("status", flat=True).get(pk=row.pk)


def killed(worker) -> None:
    worker.kill()  # SIGKILL: no cleanup, the task's transaction is left open until PostgreSQL drops it
    worker.wait(timeout=10)
    assert worker.returncode == -9


def assert_billed_once(run: BillingRun, connections) -> None:
    run.refresh_from_db()
    assert (run.status, run.done, run.issued, run.failed) == (BillingRunStatus.COMPLETED, 3, 3, 0)
    invoices = Invoice.objects.filter(billing_run=run)
    assert sorted(invoices.values_list("connection_id", flat=True)) == [c.pk for c in connections]
    assert len(set(invoices.values_list("number", flat=True))) == 3


def test_a_run_whose_worker_is_killed_mid_chunk_completes_on_a_new_worker_with_the_reconciler(
    workers, provider, three_connections, grace_over
):
    run = run_of(provider)
    first_chunk = pending_chunks(run)[0]
    # A chunk locks its provider's invoice counter to number its bills: held here, the worker stops
    # there, mid-transaction.
    counter = DocumentCounter.objects.create(provider=provider, series=DocumentSeries.INVOICE, year=2024)
    first = workers.start()
    with row_locked(counter):
        dispatch(run)
        wait_until(waiting_for_a_lock, message="the worker did not reach the first chunk's commit")
        killed(first)

    workers.start()  # bills the chunks still queued; the killed worker's message is not redelivered
    wait_until(lambda: pending_chunks(run) == [first_chunk], message="the new worker billed nothing")
    time.sleep(STILL)
    assert (status_of(run), pending_chunks(run)) == (BillingRunStatus.RUNNING, [first_chunk])

    reconcile_billing_runs()  # as celery beat would, once the run has been still for the grace period

    wait_until(lambda: status_of(run) == BillingRunStatus.COMPLETED, message="the run did not complete")
    assert_billed_once(run, three_connections)


def test_a_run_whose_queued_chunks_a_redis_restart_lost_completes_with_the_reconciler(
    workers, own_broker, provider, three_connections, grace_over
):
    run = run_of(provider)
    dispatch(run)  # three chunks queued; no worker yet
    own_broker.restart()  # a Redis without a disk comes back empty

    workers.start(broker_url=own_broker.url())
    time.sleep(STILL)
    assert (status_of(run), len(pending_chunks(run))) == (BillingRunStatus.RUNNING, 3)

    reconcile_billing_runs()

    wait_until(lambda: status_of(run) == BillingRunStatus.COMPLETED, message="the run did not complete")
    assert_billed_once(run, three_connections)


def question_of(provider) -> AIQuery:
    auditor = UserFactory(provider=provider, roles=[Role.AUDITOR])
    return ai_query_submit(asked_by=auditor, question="SELECT count(*) AS bills FROM invoices")


def assert_answered(query: AIQuery) -> None:
    query.refresh_from_db()
    assert (query.status, query.rows) == (AIQueryStatus.ANSWERED, [[0]]), query.reason


def test_a_question_whose_worker_is_killed_mid_answer_is_answered_by_a_new_worker_with_the_reconciler(
    workers, provider, grace_over
):
    query = question_of(provider)
    # An answer begins by locking its question's row: held here, the worker waits there, mid-transaction.
    first = workers.start()
    with row_locked(query):
        # Sent as `dispatch` sends it, without its bookkeeping: that updates the row held here.
        answer_ai_query.delay(query.pk)
        wait_until(waiting_for_a_lock, message="the worker did not start on the question")
        killed(first)

    workers.start()
    time.sleep(STILL)
    assert status_of(query) == AIQueryStatus.PENDING

    reconcile_ai_queries()

    wait_until(lambda: status_of(query) != AIQueryStatus.PENDING, seconds=120, message="no answer")
    assert_answered(query)


def test_a_question_a_redis_restart_lost_is_answered_with_the_reconciler(
    workers, own_broker, provider, grace_over
):
    query = question_of(provider)
    ask(query)  # queued; no worker yet
    own_broker.restart()

    workers.start(broker_url=own_broker.url())
    time.sleep(STILL)
    assert status_of(query) == AIQueryStatus.PENDING

    reconcile_ai_queries()

    wait_until(lambda: status_of(query) != AIQueryStatus.PENDING, seconds=120, message="no answer")
    assert_answered(query)
