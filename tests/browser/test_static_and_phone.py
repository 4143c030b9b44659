"""The product serves its own styles, script and chart library, and its pages fit a phone's width."""

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import no_horizontal_scroll


def test_the_dashboard_loads_styles_script_and_chart_library_from_the_product(
    page: Page, sign_in, super_creator, bills
):
    first_answers = {}  # a file's first load: later ones may come from the browser's cache
    page.on(
        "response",
        lambda response: first_answers.setdefault(response.url.rsplit("/", 1)[-1], response.status),
    )
    sign_in(super_creator)

    page.goto("/dashboard")
    page.wait_for_load_state("networkidle")

    assert {name: first_answers.get(name) for name in ("app.css", "app.js", "chart.umd.min.js")} == {
        "app.css": 200,
        "app.js": 200,
        "chart.umd.min.js": 200,
    }
    drawn = page.evaluate(
        "[...document.querySelectorAll('canvas[data-chart]')].map(c => !!Chart.getChart(c))"
    )
    assert drawn == [True, True]
    applied = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--focus')")
    assert applied.strip() == "#ffbf47"  # app.css's focus ring colour: the style sheet is in force


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}], ids=["phone"])
def test_navigation_and_a_bill_fit_a_phone_screen(page: Page, sign_in, super_creator, bills, viewport):
    sign_in(super_creator)

    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Find a bill")).to_be_visible()
    assert no_horizontal_scroll(page)

    page.goto(f"/bills/{bills[-1].pk}")
    expect(page.get_by_role("heading", name="Previous bills")).to_be_visible()
    assert no_horizontal_scroll(page)
    outside_a_wrap = page.locator("main table").evaluate_all(
        "tables => tables.filter(t => !t.closest('.table-wrap')).length"
    )
    assert outside_a_wrap == 0
