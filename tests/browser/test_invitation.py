"""A customer accepts the invitation e-mailed to them (the link read from what the SMTP server received),
sets a password, signs in, finds their connection that has no bill yet and sends a reading of it."""

import re
from datetime import UTC, datetime
from decimal import Decimal

from playwright.sync_api import Page, expect

from billing.models import Customer, MeterReading, ReadingSource
from billing.services import customer_invite
from tests.factories import ConnectionFactory, CustomerFactory

LINK = re.compile(r"https?://[^/\s]+(/set-password/\S+)")
PASSWORD = "my-own-electricity-passphrase"


def test_a_customer_accepts_the_invitation_and_sends_a_reading(
    page: Page, mailbox, flat_provider, creator, time_machine
):
    time_machine.move_to(datetime(2024, 4, 2, 9, tzinfo=UTC))
    customer = CustomerFactory(
        provider=flat_provider, user=None, name="Zara Hussain", email="zara@example.com"
    )
    connection = ConnectionFactory(customer=customer, provider=flat_provider, number="LHR-0042")
    customer_invite(customer=customer, invited_by=creator)  # commits: the e-mail goes at once (eager)

    (invitation,) = mailbox.received
    assert invitation.rcpt_tos == ["zara@example.com"]
    page.goto(LINK.search(invitation.text).group(1))

    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    expect(page.get_by_text("zara@example.com")).to_be_visible()
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Confirm the password").fill(PASSWORD)
    page.get_by_role("button", name="Set the password").click()

    expect(page.get_by_text("Your password is set.")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value("zara@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/portal/$"))
    row = page.get_by_test_id("connections").get_by_role("row").filter(has_text="LHR-0042")
    expect(row).to_contain_text("No bill yet")
    row.get_by_role("link", name="Send a reading of connection LHR-0042").click()

    expect(page.get_by_test_id("last-reading")).to_have_text("No reading of this meter yet.")
    page.get_by_label("Read on").fill("2024-04-02T13:45")
    page.get_by_role("spinbutton", name="Peak register (kWh)", exact=True).fill("120.5")
    page.get_by_role("spinbutton", name="Off-peak register (kWh)", exact=True).fill("480")
    page.get_by_role("button", name="Send the reading").click()

    expect(page).to_have_url(re.compile(r"/portal/$"))
    expect(page.get_by_role("status")).to_contain_text("Your reading of LHR-0042 is recorded. Thank you.")
    reading = MeterReading.objects.get(connection=connection)
    assert (reading.source, reading.recorded_by_id, reading.import_peak, reading.import_off_peak) == (
        ReadingSource.SELF,
        Customer.objects.get(pk=customer.pk).user_id,
        Decimal("120.5"),
        Decimal("480"),
    )
