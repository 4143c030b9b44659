"""A clerk finds a bill by customer, connection, month and year, and reads everything on it."""

import re

from playwright.sync_api import Page, expect


def test_a_bill_found_by_its_ids_shows_lines_working_arrears_payables_and_history(
    page: Page, sign_in, creator, connection, bills
):
    january, february, march = bills
    sign_in(creator)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Find a bill").click()
    page.get_by_label("Customer ID").fill(connection.customer.number)
    page.get_by_label("Connection ID").fill(connection.number)
    page.get_by_label("Month").select_option(label="March")
    page.get_by_label("Year").fill("2024")
    page.get_by_role("button", name="Show the bill").click()

    expect(page).to_have_url(re.compile(rf"/bills/{march.pk}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Bill {march.number}")
    expect(page.get_by_test_id("bill-number")).to_have_text(march.number)
    charges = page.get_by_role("table", name="Every line of the bill")
    expect(charges.get_by_role("row").filter(has_text="Energy (all hours, slab 1)")).to_contain_text(
        "9,750.00"
    )
    expect(charges.get_by_role("row").filter(has_text="Current charges")).to_contain_text("9,750.00")
    working = page.get_by_role("region", name="How this bill was worked out")
    expect(working).to_contain_text("300 kWh \N{MULTIPLICATION SIGN} 32.50 = 9,750.00")
    expect(page.get_by_test_id("arrears")).to_have_text("Rs19,500.00")
    expect(page.get_by_test_id("payable-before")).to_have_text("Rs29,250.00")
    expect(page.get_by_test_id("payable-after")).to_have_text("Rs30,225.00")  # + 10% of 9,750.00
    previous = page.get_by_role("table", name="The previous 2 bills of this connection")
    expect(previous.get_by_role("row").filter(has_text=february.number)).to_contain_text("Feb 2024")
    expect(previous.get_by_role("row").filter(has_text=january.number)).to_contain_text("Jan 2024")


def test_a_bill_that_does_not_exist_is_explained_and_the_search_is_kept(
    page: Page, sign_in, creator, connection
):
    sign_in(creator)
    page.goto("/bills/find")

    page.get_by_label("Customer ID").fill(connection.customer.number)
    page.get_by_label("Connection ID").fill(connection.number)
    page.get_by_label("Month").select_option(label="March")
    page.get_by_label("Year").fill("2024")
    page.get_by_role("button", name="Show the bill").click()

    expect(page.get_by_role("alert")).to_contain_text("No bill of that customer's connection for that month")
    expect(page.get_by_label("Connection ID")).to_have_value(connection.number)
    expect(page.get_by_label("Month")).to_have_value("3")
