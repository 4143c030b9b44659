"""An auditor asks a question in plain words and reads the SQL written for it and its answer."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from tests.factories import UserFactory


@pytest.fixture
def auditor(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.AUDITOR])


def test_a_question_shows_its_sql_and_the_answer_as_a_table(page: Page, sign_in, auditor, bills):
    sign_in(auditor)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Ask a question").click()

    page.get_by_label("Your question").fill("Count of invoices by status")
    page.get_by_role("button", name="Ask").click()

    expect(page).to_have_url(re.compile(r"/audit/questions/\d+$"))
    expect(page.get_by_test_id("query-status")).to_have_text("Answered")
    expect(page.get_by_test_id("generated-sql")).to_contain_text(re.compile(r"^\s*SELECT", re.IGNORECASE))
    results = page.get_by_test_id("query-results")
    expect(results.get_by_role("columnheader")).to_have_text(["status", "invoices", "billed", "balance"])
    billed = re.compile(r"^29250(\.00)?$")  # SQLite sums the NUMERIC amounts to a whole number
    expect(results.get_by_role("row").nth(1).get_by_role("cell")).to_have_text(
        ["Pending", "3", billed, billed]
    )
