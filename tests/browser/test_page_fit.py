"""Every page a role can open fits the window, on a desktop (1280 px) and a phone (390 px): nothing
sticks out of the page or out of its box, and no text is cut. Only on a phone may a wide table scroll
sideways inside its own frame (.table-wrap); on a desktop it must fit as it is.

One test per role signs in once and goes through every page at both widths, each page and width a
subtest of its own: the pages show a provider with a row of everything (tests/admin/conftest.py's
`populate`), and a page the role may not open (403) is left out. A failure names the page, the width
and what overflows there."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import Page

from accounts.roles import Role
from auditing.models import AIQuery
from billing.models import Customer, ServiceConnection
from invoicing import services
from invoicing.models import Adjustment, BillingRun, DisconnectionOrder, Invoice, Payment, PaymentFile
from tests.admin.conftest import JANUARY, populate, populated_on  # noqa: F401 (a fixture, used by name)
from tests.factories import UserFactory, billable_connection

WIDTHS = {"desktop": 1280, "phone": 390}

# What overflows: the page wider than the window; an element whose content is wider than its box
# (text cut, or spilling out of it); a scroll frame that scrolls, on a desktop. Where an element
# overflows, its ancestors do too: only the innermost ones are named.
OVERFLOWS = """(phone) => {
  const doc = document.documentElement;
  const found = [];
  if (doc.scrollWidth > doc.clientWidth) found.push(`the page: ${doc.scrollWidth} px in ${doc.clientWidth}`);
  const scrollFrame = (el) => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const inFrame = (el) => { for (let a = el.parentElement; a; a = a.parentElement) if (scrollFrame(a)) return true; return false; };
  const name = (el) => {
    const text = (el.innerText || el.value || "").trim().slice(0, 40);
    return `${el.tagName.toLowerCase()}${el.className && typeof el.className === "string" ? "." + el.className.trim().replace(/\\s+/g, ".") : ""}${text ? ` "${text}"` : ""}`;
  };
  const over = [...document.body.querySelectorAll("*")].filter((el) => {
    if (!el.clientWidth || el.closest("pre.sql") || el.tagName === "CANVAS") return false;
    if (el.scrollWidth <= el.clientWidth + 1) return false;
    if (scrollFrame(el)) return !phone;  // a frame that scrolls: a phone's only
    return !(phone && inFrame(el));  // inside a frame on a phone, the frame scrolls instead
  });
  const innermost = over.filter((el) => !over.some((other) => other !== el && el.contains(other)));
  innermost.slice(0, 5).forEach((el) => found.push(`${name(el)}: ${el.scrollWidth} px in ${el.clientWidth}`));
  return found;
}"""


@pytest.fixture
def site(populated_on, flat_provider, cash):  # noqa: F811
    """A provider with a row of every kind, a bill a clerk issued, and a user for each role."""
    populate(flat_provider, count=1, cash=cash)
    users = {
        "clerk": UserFactory(
            provider=flat_provider, roles=[Role.INVOICE_CREATOR], name="Muhammad Abdul Rehman Siddiqui"
        ),
        "super-creator": UserFactory(
            provider=flat_provider, roles=[Role.SUPER_CREATOR], name="Ayesha Noor Qureshi"
        ),
        "auditor": UserFactory(provider=flat_provider, roles=[Role.AUDITOR], name="Farhan Ali Chaudhry"),
        "officer": UserFactory(provider=flat_provider, roles=[Role.ADMIN], name="Sana Javed Malik"),
        "platform-admin": UserFactory(provider=None, roles=[Role.ADMIN], name="Platform Administrator"),
    }
    # Long names and numbers, and a big commercial bill: what makes a table wide.
    billed = billable_connection(flat_provider, peak=20_000, off_peak=40_000, number="LHR-COM-0012345")
    billed.customer.name = "Muhammad Abdul Rehman Siddiqui Trading Company"
    billed.customer.save(update_fields=["name"])
    invoice = services.invoice_issue(connection=billed, period=JANUARY, created_by=users["clerk"])
    services.payment_post(
        invoice=invoice,
        amount=Decimal("1234.50"),
        method=cash,
        received_by=users["clerk"],
        reference="CHQ-000123",
    )
    users["customer"] = billed.customer.user
    return {"users": users, "urls": page_urls(flat_provider, invoice)}


def page_urls(provider, invoice: Invoice) -> list[str]:
    """Every page of the url confs (accounts, billing, invoicing, auditing, the portal), on rows that
    exist."""
    customer = Customer.objects.filter(provider=provider, connections__invoices__isnull=False).first()
    connection = invoice.connection
    pending = ServiceConnection.objects.filter(provider=provider, status="Pending").first()
    payment = Payment.objects.filter(invoice__connection__provider=provider).first()
    ids = {
        "bill": invoice.pk,
        "payment": payment.pk,
        "adjustment": Adjustment.objects.first().pk,
        "run": BillingRun.objects.first().pk,
        "file": PaymentFile.objects.first().pk,
        "order": DisconnectionOrder.objects.first().pk,
        "question": AIQuery.objects.first().pk,
        "customer": customer.pk,
        "connection": connection.pk,
        "pending": pending.pk if pending else connection.pk,
    }
    urls = [
        "/dashboard", "/bills/find", "/bills/{bill}", "/payments/new", "/payments/new?bill={bill}",
        "/payments/{payment}", "/payments/{payment}/reverse", "/adjustments/new", "/adjustments/new?bill={bill}",
        "/adjustments/{adjustment}", "/invoices", "/invoices/mine", "/invoices/new", "/invoices/{bill}/edit",
        "/billing-runs", "/billing-runs/{run}", "/payment-files", "/payment-files/{file}", "/messages", "/books",
        "/customers", "/customers/new", "/customers/import", "/customers/{customer}", "/customers/{customer}/edit",
        "/customers/{customer}/connections/new", "/connections/{connection}", "/connections/{connection}/edit",
        "/connections/{connection}/income", "/connections/{pending}/connect", "/connections/{connection}/lifecycle",
        "/connections/{connection}/collection", "/disconnection-orders", "/disconnection-orders/{order}",
        "/audit/log", "/audit/invoices?number=P0", "/audit/invoices/{bill}/history", "/audit/questions",
        "/audit/questions/{question}", "/audit/pricing",
        "/manage/users", "/manage/users/new", "/manage/providers", f"/manage/providers/{provider.pk}",
        f"/manage/providers/{provider.pk}/prices",
        "/portal/", "/portal/bills/{bill}", "/portal/payments", "/portal/calculator", "/portal/profile",
        "/portal/connections/{connection}/reading",
    ]  # fmt: skip
    return [url.format(**ids) for url in urls]


@pytest.mark.parametrize(
    "role", ["clerk", "super-creator", "auditor", "officer", "platform-admin", "customer"]
)
def test_every_page_of_a_role_fits_a_desktop_and_a_phone(page: Page, sign_in, site, role, subtests):
    sign_in(site["users"][role])  # once: the role's session serves every page at both widths
    opened = []
    for url in site["urls"]:
        for label, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            answer = page.goto(url)
            if answer.status in (403, 404):  # not this role's page
                break
            with subtests.test(msg=f"{url} on a {label} ({width} px)"):
                # A refused form (400: a filter that needs its fields) is a page to fit too.
                assert answer.status in (200, 400)
                assert page.evaluate(OVERFLOWS, width < 600) == []
        else:
            opened.append(url)

    assert len(opened) >= 5, f"{role} opened only {opened}"


def test_the_pages_before_signing_in_fit_a_desktop_and_a_phone(page: Page, subtests):
    for url in ["/", "/sign-in", "/forgot-password"]:
        for label, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            with subtests.test(msg=f"{url} on a {label} ({width} px)"):
                assert page.goto(url).status == 200
                assert page.evaluate(OVERFLOWS, width < 600) == []
