"""A super creator starts the month's billing run and watches it: the progress bar moves while a worker
bills, then the page shows the counts and the connections skipped with their reasons."""

import re
from functools import partial
from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, expect

from invoicing import services, tasks
from tests.factories import ConnectionFactory, CustomerFactory


@pytest.fixture
def no_readings(flat_provider):
    """A connection with no meter reading: the run skips it."""
    return ConnectionFactory(customer=CustomerFactory(provider=flat_provider), provider=flat_provider)


@pytest.fixture
def worker(monkeypatch) -> list[int]:
    """The chunks the page hands to the workers, one connection each, wait here: the run is still
    running when its page opens, and the test bills them one at a time as a worker would."""
    queued: list[int] = []
    monkeypatch.setattr(tasks, "bill_chunk", SimpleNamespace(delay=queued.append))
    monkeypatch.setattr(services, "billing_run_start", partial(services.billing_run_start, chunk_size=1))
    return queued


def test_a_billing_run_shows_live_progress_then_counts_and_skipped_connections(
    page: Page, sign_in, super_creator, connection, no_readings, worker
):
    sign_in(super_creator)
    page.clock.install()  # the page polls on a timer: the test decides when it looks again
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing runs").click()

    page.get_by_label("Billing month").fill("2024-01")
    page.get_by_role("button", name="Start the billing run").click()

    expect(page).to_have_url(re.compile(r"/billing-runs/\d+$"))
    progress = page.get_by_role("progressbar", name=re.compile("^Progress"))
    expect(progress).to_have_js_property("value", 0)
    page.wait_for_load_state("networkidle")  # its first look at the run is answered; nothing else asks

    services.billing_run_chunk_bill(chunk_id=worker[0])
    page.clock.run_for(1_000)
    expect(progress).to_have_js_property("value", 50)
    expect(progress).to_have_accessible_name(re.compile(r"1 of 2 connections \(50%\)"))
    expect(page.get_by_test_id("run-status")).to_have_text("Running")

    services.billing_run_chunk_bill(chunk_id=worker[1])
    page.clock.run_for(1_000)
    expect(page.get_by_role("heading", name="Connections not billed")).to_be_visible()
    expect(progress).to_have_js_property("value", 100)
    expect(page.get_by_test_id("run-status")).to_have_text("Completed: 1 billed, 1 connection skipped")
    expect(page.get_by_test_id("run-issued")).to_have_text("1")
    expect(page.get_by_test_id("run-skipped")).to_have_text("1")
    skipped = page.get_by_role("row").filter(has_text=no_readings.number)
    expect(skipped).to_contain_text(re.compile("reading", re.IGNORECASE))
