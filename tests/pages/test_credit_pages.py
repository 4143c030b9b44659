"""The bill page shows a bill's credit notes and, after a re-rate, the bill that replaced it."""

from datetime import date
from decimal import Decimal as D

import pytest

from accounts.roles import Role
from invoicing.services import invoice_issue, invoice_update

pytestmark = pytest.mark.django_db


def test_the_bill_page_lists_its_credit_notes_and_the_bill_replacing_it(signed_in, connection, super_creator):
    january = invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=super_creator)
    replacement = invoice_update(
        invoice=january, updated_by=super_creator, kwh=D("100"), reason="Meter misread"
    )
    note = january.credit_notes.get()
    browser = signed_in(super_creator, Role.SUPER_CREATOR)

    original_page = browser.get(f"/bills/{january.pk}").content.decode()
    new_page = browser.get(f"/bills/{replacement.pk}").content.decode()

    assert note.number in original_page
    assert "Meter misread" in original_page
    assert f"replaced by bill {replacement.number}" in original_page
    assert f"This bill replaces bill {january.number}" in new_page
