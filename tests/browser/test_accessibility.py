"""The pages each role works in are labelled for assistive technology: every control has a label, one
h1 and no skipped heading level, and every column header says what it heads."""

from itertools import pairwise

from playwright.sync_api import Page

from accounts.roles import Role
from tests.factories import UserFactory

# On one page: controls without a label, the heading levels in order, column headers without a scope.
AUDIT = """() => {
  const visible = (el) => el.type !== "hidden" && el.getClientRects().length > 0;
  const unlabelled = [...document.querySelectorAll("input, select, textarea")]
    .filter(visible)
    .filter((el) => !el.labels.length && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
    .map((el) => el.name || el.id || el.outerHTML.slice(0, 60));
  const levels = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].map((h) => Number(h.tagName[1]));
  const unscoped = [...document.querySelectorAll("thead th")].filter((th) => !th.scope).map((th) => th.textContent);
  return { unlabelled, levels, unscoped };
}"""


def problems_on(page: Page, paths: list[str]) -> dict[str, list[str]]:
    """What each page gets wrong, by path; pages with nothing wrong are left out."""
    found = {}
    for path in paths:
        page.goto(path)
        result = page.evaluate(AUDIT)
        levels = result["levels"]
        found[path] = [
            *(f"unlabelled control {name}" for name in result["unlabelled"]),
            *([f"{levels.count(1)} h1 headings"] if levels.count(1) != 1 else []),
            *(f"h{after} after h{before}" for before, after in pairwise(levels) if after > before + 1),
            *(f"column header without scope: {text}" for text in result["unscoped"]),
        ]
    return {path: wrong for path, wrong in found.items() if wrong}


def test_the_staff_pages_are_labelled(page: Page, sign_in, super_creator, bills):
    march = bills[-1]
    sign_in(super_creator)

    assert (
        problems_on(
            page,
            [
                "/dashboard",
                "/bills/find",
                f"/bills/{march.pk}",
                f"/payments/new?bill={march.pk}",
                f"/adjustments/new?bill={march.pk}",
                "/invoices",
                "/billing-runs",
                f"/messages?customer={march.customer.number}",
                f"/connections/{march.connection_id}/lifecycle",
            ],
        )
        == {}
    )


def test_the_pages_before_signing_in_are_labelled(page: Page):
    assert problems_on(page, ["/sign-in", "/forgot-password"]) == {}


def test_the_auditor_pages_are_labelled(page: Page, sign_in, flat_provider, bills):
    sign_in(UserFactory(provider=flat_provider, roles=[Role.AUDITOR]))

    assert problems_on(page, ["/audit/log", "/audit/invoices", "/audit/questions", "/audit/pricing"]) == {}


def test_the_customer_portal_is_labelled(page: Page, sign_in, connection, bills):
    sign_in(connection.customer.user)

    assert (
        problems_on(
            page,
            [
                "/portal/",
                f"/portal/bills/{bills[-1].pk}",
                "/portal/payments",
                "/portal/calculator",
                "/portal/profile",
                f"/portal/connections/{connection.pk}/reading",
            ],
        )
        == {}
    )


def test_the_customer_and_connection_pages_are_labelled(page: Page, sign_in, super_creator, connection):
    customer = connection.customer
    sign_in(super_creator)

    assert (
        problems_on(
            page,
            [
                "/customers",
                "/customers/new",
                "/customers/import",
                f"/customers/{customer.pk}",
                f"/customers/{customer.pk}/edit",
                f"/customers/{customer.pk}/connections/new",
                f"/connections/{connection.pk}",
                f"/connections/{connection.pk}/edit",
                f"/connections/{connection.pk}/income",
                f"/connections/{connection.pk}/connect",
            ],
        )
        == {}
    )
