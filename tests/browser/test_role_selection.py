"""A person holding several roles signs in, picks one on the role cards and switches from the bar."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from tests.browser.helpers import submit_sign_in, tab_to
from tests.factories import UserFactory


@pytest.fixture
def creator_and_auditor(provider):
    return UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR, Role.AUDITOR])


def test_role_cards_then_the_switcher_change_what_the_user_acts_as(page: Page, creator_and_auditor):
    submit_sign_in(page, creator_and_auditor)

    expect(page.get_by_role("heading", level=1)).to_have_text("Choose the role to work in")
    expect(page.get_by_test_id(re.compile(r"^role-card-"))).to_have_count(2)
    expect(page.get_by_test_id("role-card-Auditor")).to_contain_text("Auditor")
    page.get_by_test_id("role-card-Invoice_Creator").click()

    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_test_id("acting-role")).to_have_text("Invoice creator")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)

    page.get_by_label("Switch role").select_option(label="Auditor")
    page.get_by_role("button", name="Switch", exact=True).click()

    expect(page.get_by_test_id("acting-role")).to_have_text("Auditor")
    expect(nav.get_by_role("link", name="Audit log")).to_be_visible()
    expect(page.get_by_label("Switch role")).to_have_value(Role.AUDITOR)


def test_a_role_card_is_reached_with_tab_and_chosen_with_enter(page: Page, creator_and_auditor):
    submit_sign_in(page, creator_and_auditor)

    tab_to(page, "role-card-Auditor")
    expect(page.get_by_test_id("role-card-Auditor")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.get_by_test_id("acting-role")).to_have_text("Auditor")
