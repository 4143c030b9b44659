"""The reconciler sends again the pending chunks of every unfinished run that has been still for the
grace period (nothing sent, no chunk billed), whatever lost their messages, and leaves alone a run sent
moments ago or being billed; the monthly job catches up a provider with no run of the month just
ended, each provider on its own."""

from datetime import date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from config.celery import app as celery_app
from invoicing import services, tasks
from invoicing.models import BillingRun, BillingRunStatus, Invoice
from invoicing.selectors import pending_chunks
from tests.factories import FlatTariffFactory, ProviderFactory, billable_connection

pytestmark = pytest.mark.django_db

STARTED = datetime(2024, 2, 3, 9, 0, tzinfo=ZoneInfo(settings.TIME_ZONE))
GRACE = timedelta(seconds=settings.RECONCILE_GRACE_SECONDS)
SECOND = timedelta(seconds=1)
JANUARY = date(2024, 1, 1)


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """The chunk ids sent to the broker, in order (none is billed)."""
    chunk_ids: list[int] = []
    monkeypatch.setattr(tasks, "bill_chunk", SimpleNamespace(delay=chunk_ids.append))
    return chunk_ids


@pytest.fixture
def run(flat_provider) -> BillingRun:
    """A run of three chunks of one connection each, planned at STARTED; its chunks never sent."""
    for _ in range(3):
        billable_connection(flat_provider, months=1)
    with time_machine.travel(STARTED, tick=False):
        run, _ = services.billing_run_start(provider=flat_provider, period=JANUARY, chunk_size=1)
    return run


def reconcile_at(moment: datetime, capture) -> None:
    with time_machine.travel(moment, tick=False), capture(execute=True):
        tasks.reconcile_billing_runs.delay()


def test_the_reconciler_sends_the_pending_chunks_of_a_run_still_for_the_grace_period(
    run, sent, django_capture_on_commit_callbacks
):
    first, *rest = pending_chunks(run)
    with time_machine.travel(STARTED + SECOND, tick=False):
        services.billing_run_chunk_bill(chunk_id=first)  # its message arrived; the others' were lost

    reconcile_at(STARTED + SECOND + GRACE + SECOND, django_capture_on_commit_callbacks)

    run.refresh_from_db()
    assert sent == rest
    assert run.dispatched_at == STARTED + SECOND + GRACE + SECOND


def test_the_reconciler_leaves_a_run_sent_within_the_grace_period(
    run, sent, django_capture_on_commit_callbacks
):
    with time_machine.travel(STARTED + GRACE, tick=False):
        services.billing_run_dispatched(run_id=run.pk)  # queued behind other work, not lost

    reconcile_at(STARTED + GRACE + GRACE - SECOND, django_capture_on_commit_callbacks)

    assert sent == []


def test_the_reconciler_leaves_a_run_whose_chunks_are_being_billed(
    run, sent, django_capture_on_commit_callbacks
):
    with time_machine.travel(STARTED + GRACE, tick=False):
        services.billing_run_chunk_bill(chunk_id=pending_chunks(run)[0])

    reconcile_at(STARTED + GRACE + GRACE - SECOND, django_capture_on_commit_callbacks)

    assert sent == []


def test_the_reconciler_leaves_a_run_just_started_and_a_finished_one(
    run, flat_provider, sent, django_capture_on_commit_callbacks
):
    for chunk_id in pending_chunks(run):
        services.billing_run_chunk_bill(chunk_id=chunk_id)
    other = ProviderFactory()
    FlatTariffFactory(provider=other)
    billable_connection(other, months=1)
    with time_machine.travel(STARTED + GRACE, tick=False):
        services.billing_run_start(provider=other, period=JANUARY)

    reconcile_at(STARTED + GRACE + GRACE - SECOND, django_capture_on_commit_callbacks)

    assert BillingRun.objects.get(pk=run.pk).status == BillingRunStatus.COMPLETED
    assert sent == []


def test_a_run_sent_again_by_the_reconciler_completes_and_bills_each_connection_once(
    run, django_capture_on_commit_callbacks
):
    with time_machine.travel(STARTED + SECOND, tick=False):
        services.billing_run_chunk_bill(chunk_id=pending_chunks(run)[0])

    reconcile_at(STARTED + SECOND + GRACE + SECOND, django_capture_on_commit_callbacks)  # eager workers bill
    reconcile_at(STARTED + GRACE + GRACE + GRACE, django_capture_on_commit_callbacks)  # nothing left

    run.refresh_from_db()
    assert (run.status, run.done, run.issued) == (BillingRunStatus.COMPLETED, 3, 3)
    assert Invoice.objects.filter(billing_run=run).count() == 3


# --- the monthly job's catch-up ------------------------------------------------------------------


def providers_with_january(*names: str) -> dict[str, object]:
    providers = {}
    for name in names:
        provider = ProviderFactory()
        FlatTariffFactory(provider=provider)
        billable_connection(provider, months=1)
        providers[name] = provider
    return providers


def test_the_catch_up_starts_the_run_only_of_a_provider_still_without_one(django_capture_on_commit_callbacks):
    providers = providers_with_january("billed on the 1st", "missed on the 1st")
    dormant = ProviderFactory(is_active=False)
    services.billing_run_start(provider=providers["billed on the 1st"], period=JANUARY)

    with time_machine.travel(STARTED, tick=False), django_capture_on_commit_callbacks(execute=True):
        tasks.bill_month_just_ended.delay()  # the 3rd of February: beat was down on the 1st

    assert BillingRun.objects.filter(provider=providers["billed on the 1st"]).count() == 1
    caught_up = BillingRun.objects.get(provider=providers["missed on the 1st"])
    assert (caught_up.period, caught_up.status, caught_up.issued) == (JANUARY, BillingRunStatus.COMPLETED, 1)
    assert not BillingRun.objects.filter(provider=dormant).exists()


def test_one_providers_failure_stops_no_other_and_the_next_catch_up_starts_it(
    monkeypatch, django_capture_on_commit_callbacks
):
    providers = providers_with_january("failing", "fine")
    start_once = services.billing_run_start_once

    def fails_for_one(*, provider, period):
        if provider == providers["failing"]:
            raise RuntimeError("the provider's settings cannot be read")
        return start_once(provider=provider, period=period)

    monkeypatch.setattr(services, "billing_run_start_once", fails_for_one)
    # As on the workers, a provider's task that fails is its own failure, not its caller's.
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)
    with time_machine.travel(STARTED, tick=False), django_capture_on_commit_callbacks(execute=True):
        tasks.bill_month_just_ended.delay()

    assert not BillingRun.objects.filter(provider=providers["failing"]).exists()
    assert BillingRun.objects.get(provider=providers["fine"]).issued == 1

    monkeypatch.setattr(services, "billing_run_start_once", start_once)
    with (
        time_machine.travel(STARTED + timedelta(days=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        tasks.bill_month_just_ended.delay()

    assert BillingRun.objects.get(provider=providers["failing"]).issued == 1
    assert BillingRun.objects.filter(provider=providers["fine"]).count() == 1


def test_beat_runs_the_reconciler_every_few_minutes_and_the_catch_up_daily_from_the_2nd():
    reconciler = PeriodicTask.objects.get(task="invoicing.reconcile_billing_runs")
    catch_up = PeriodicTask.objects.get(name="Billing run catch-up")

    assert (reconciler.interval.every, reconciler.interval.period) == (
        settings.RECONCILE_EVERY_SECONDS,
        "seconds",
    )
    assert (catch_up.task, catch_up.crontab.day_of_month, catch_up.crontab.hour) == (
        "invoicing.bill_month_just_ended",
        "2-31",
        "2",
    )
