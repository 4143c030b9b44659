"""Price orders in Django admin: entered by a provider's administrator, shown with the bills they
affect, confirmed with "Confirm and re-bill" (the run then shown on the order's page); read-only to an
auditor, and another provider's order is not found."""

from datetime import date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from accounts.roles import Role
from invoicing.models import BillingRunStatus, Invoice, InvoiceStatus
from invoicing.services import invoice_issue
from providers.models import PriceOrder, PriceOrderStatus
from providers.orders import price_order_enter
from providers.services import TariffSpec
from tests.factories import FlatTariffFactory, UserFactory
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db

ORDERS = "/admin/providers/priceorder/"
FROZEN = time_machine.travel(datetime(2024, 4, 20, 12, tzinfo=ZoneInfo("Asia/Karachi")), tick=False)


@pytest.fixture(autouse=True)
def _frozen():
    with FROZEN:
        yield


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def administrator(flat_provider):
    return UserFactory(
        provider=flat_provider, roles=[Role.ADMIN], is_staff=True, designation="Tariff Officer"
    )


@pytest.fixture
def bills(connection, creator):
    return [
        invoice_issue(connection=connection, period=month, created_by=creator)
        for month in (date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1))
    ]


def order_of(provider, user, reference="NEPRA/TRF-1/2024"):
    return price_order_enter(
        provider=provider,
        reference=reference,
        valid_from=date(2024, 2, 1),
        connection_type=None,
        rows=[TariffSpec(rate=D("30.00"))],
        entered_by=user,
    )


def test_an_administrator_enters_an_order_in_admin(flat_provider, administrator):
    response = signed_in(administrator).post(
        f"{ORDERS}add/",
        {
            "reference": "NEPRA/TRF-1/2024",
            "description": "Tariff determination",
            "valid_from": "2024-02-01",
            "connection_type": "",
            "rows": '[{"rate": "30.00"}]',
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    order = PriceOrder.objects.get()
    assert (order.provider, order.status, order.rows, order.entered_by) == (
        flat_provider,
        PriceOrderStatus.DRAFT,
        [
            {
                "rate": "30.00",
                "bucket": "all",
                "band_low": "0",
                "band_high": None,
                "min_units": "0",
                "min_amount": "0",
                "slab": 1,
                "mode": "average",
                "code": "",
                "description": "",
            }
        ],
        administrator,
    )


def test_an_order_dated_today_is_refused_at_its_field(flat_provider, administrator):
    response = signed_in(administrator).post(
        f"{ORDERS}add/",
        {"reference": "R-1", "valid_from": "2024-04-20", "rows": '[{"rate": "30.00"}]', "_save": "Save"},
    )

    assert response.status_code == 200
    assert "change the prices in the ordinary way" in response.content.decode()
    assert not PriceOrder.objects.exists()


def test_rows_that_are_no_tariff_rows_are_refused_at_their_field(flat_provider, administrator):
    response = signed_in(administrator).post(
        f"{ORDERS}add/",
        {"reference": "R-1", "valid_from": "2024-02-01", "rows": '[{"price": "30.00"}]', "_save": "Save"},
    )

    assert "price is not one of them" in response.content.decode()
    assert not PriceOrder.objects.exists()


def test_the_orders_page_lists_the_bills_it_affects_and_confirming_re_bills_them(
    flat_provider, administrator, connection, bills, django_capture_on_commit_callbacks
):
    order = order_of(flat_provider, administrator)
    client = signed_in(administrator)

    page = client.get(f"{ORDERS}{order.pk}/change/").content.decode()
    assert "Bills this order re-issues: 2, for 19500.00" in page
    assert bills[1].number in page and bills[2].number in page and bills[0].number not in page
    assert "Confirm and re-bill" in page

    with django_capture_on_commit_callbacks(execute=True):  # the run's chunks are sent once it commits
        client.post(f"{ORDERS}{order.pk}/confirm/")
    response = client.get(f"{ORDERS}{order.pk}/change/")

    order.refresh_from_db()
    run = order.billing_run
    assert (order.status, run.status, run.issued) == (
        PriceOrderStatus.CONFIRMED,
        BillingRunStatus.COMPLETED,
        2,
    )
    page = response.content.decode()
    assert "Price order NEPRA/TRF-1/2024 confirmed: 1 connections are being re-billed." in page
    assert "Follow the run" in page
    assert "2 bills issued again for 18072.58, credit notes for 19500.00" in page
    assert Invoice.objects.filter(status=InvoiceStatus.CANCELLED).count() == 2
    assert_ledger_holds(connection)


def test_an_auditor_sees_an_order_but_cannot_confirm_it(flat_provider, administrator, bills):
    order = order_of(flat_provider, administrator)
    auditor = UserFactory(provider=flat_provider, roles=[Role.AUDITOR], is_staff=True)
    client = signed_in(auditor)

    page = client.get(f"{ORDERS}{order.pk}/change/")
    assert page.status_code == 200 and "Confirm and re-bill" not in page.content.decode()
    assert client.post(f"{ORDERS}{order.pk}/confirm/").status_code == 403
    order.refresh_from_db()
    assert order.status == PriceOrderStatus.DRAFT


def test_another_providers_order_is_not_found(flat_provider, administrator, other_provider):
    FlatTariffFactory(provider=other_provider, rate=D("32.50"))
    theirs = order_of(other_provider, UserFactory(provider=other_provider, roles=[Role.ADMIN]))
    client = signed_in(administrator)

    assert client.post(f"{ORDERS}{theirs.pk}/confirm/").status_code == 404
    assert theirs.reference not in client.get(ORDERS).content.decode()
    theirs.refresh_from_db()
    assert theirs.status == PriceOrderStatus.DRAFT
