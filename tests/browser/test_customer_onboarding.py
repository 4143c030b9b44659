"""A clerk opens a customer's account, adds a connection and connects it with its first reading, through
the pages as a person would."""

import re

from playwright.sync_api import Page, expect

from billing.models import ConnectionStatus, Customer, MeterReading
from tests.factories import ConnectionTypeFactory


def test_a_clerk_creates_a_customer_and_a_connection_and_records_the_first_reading(
    page: Page, sign_in, creator, flat_provider
):
    ConnectionTypeFactory(provider=flat_provider, code="R1", description="Residential 5 kW")
    sign_in(creator)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="New customer").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Sara Khan")
    page.get_by_label("National id (CNIC)").fill("3520276543212")
    page.get_by_label("Phone number").fill("0301-2345678")
    page.get_by_role("textbox", name="E-mail", exact=True).fill("sara.khan@example.com")
    page.get_by_role("button", name="Add the customer").click()

    customer = Customer.objects.get(name="Sara Khan")
    expect(page).to_have_url(re.compile(rf"/customers/{customer.pk}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Sara Khan {flat_provider.code}-C-000001")
    expect(page.get_by_text("35202-7654321-2")).to_be_visible()  # the CNIC with its dashes

    page.get_by_role("link", name="Add a connection").click()
    page.get_by_label("Connection type").select_option(label="R1: Residential 5 kW")
    page.get_by_label("Meter number").fill("M-1001")
    page.get_by_role("button", name="Add the connection").click()

    expect(page.get_by_test_id("connection-status")).to_have_text("Pending")
    expect(page.get_by_text("No readings yet: the first one connects it.")).to_be_visible()
    page.get_by_role("link", name="Record the first reading").click()
    page.get_by_label("Import, peak (kWh)").fill("12.5")
    page.get_by_label("Import, off-peak (kWh)").fill("40")
    page.get_by_role("button", name="Record and connect").click()

    expect(page.get_by_test_id("connection-status")).to_have_text("Active")
    expect(page.get_by_role("status")).to_contain_text("is connected: its first reading is recorded")
    expect(page.get_by_role("row").filter(has_text="12.5000")).to_contain_text("40.0000")
    connection = customer.connections.get()
    assert (connection.status, connection.meter_number) == (ConnectionStatus.ACTIVE, "M-1001")
    assert MeterReading.objects.get(connection=connection).recorded_by == creator
