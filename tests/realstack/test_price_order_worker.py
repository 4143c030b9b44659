"""A retroactive price order's re-billing on the real stack: confirmed in admin's way (the run planned
in the order's transaction, its chunks sent once it commits), re-billed by a real Celery worker through
Redis, each chunk delivered twice, and the books balanced after."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import transaction

from accounts.roles import Role
from invoicing.models import BillingRun, BillingRunStatus, CreditNote, Invoice, InvoiceStatus
from invoicing.services import invoice_issue, price_order_confirm
from invoicing.tasks import dispatch
from providers.orders import price_order_enter
from providers.services import TariffSpec
from tests.factories import FlatTariffFactory, UserFactory, billable_connection
from tests.invoicing.ledger import assert_ledger_holds
from tests.realstack.conftest import wait_until

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

MONTHS = (date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1))
# 300 kWh a month read on the 28th at 32.50 (9750.00); from 1 February 30.00: February's period (29
# January to 28 February) is 3 days at 32.50 and 28 at 30.00, March's all at 30.00.
FEBRUARY_AT_ORDER, MARCH_AT_ORDER = Decimal("9072.58"), Decimal("9000.00")


def run_status(run: BillingRun) -> str:
    return BillingRun.objects.values_list("status", flat=True).get(pk=run.pk)


def test_a_real_worker_re_bills_a_price_orders_bills_once_though_its_chunks_come_twice(
    celery_worker, provider
):
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    clerk = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR])
    administrator = UserFactory(provider=provider, roles=[Role.ADMIN], designation="Tariff Officer")
    connections = [billable_connection(provider, months=3) for _ in range(5)]
    replaced = {
        connection.pk: [
            invoice_issue(connection=connection, period=month, created_by=clerk) for month in MONTHS
        ]
        for connection in connections
    }
    order = price_order_enter(
        provider=provider,
        reference="NEPRA/TRF-7/2024",
        valid_from=date(2024, 2, 1),
        connection_type=None,
        rows=[TariffSpec(rate=Decimal("30.00"))],
        entered_by=administrator,
    )

    with transaction.atomic():
        run = price_order_confirm(order=order, confirmed_by=administrator, chunk_size=2)
        assert (dispatch(run), dispatch(run)) == (3, 3)  # 5 connections in chunks of 2, each sent twice
    wait_until(lambda: run_status(run) == BillingRunStatus.COMPLETED, message="the worker did not finish")

    run.refresh_from_db()
    assert (run.total, run.done, run.issued, run.failed) == (5, 5, 10, 0)
    assert run.credited_amount == Decimal("97500.00")
    assert run.billed_amount == 5 * (FEBRUARY_AT_ORDER + MARCH_AT_ORDER)
    assert set(run.chunks.values_list("done", flat=True)) == {True}
    assert CreditNote.objects.count() == 10
    for connection in connections:
        january, february, march = replaced[connection.pk]
        standing = Invoice.objects.filter(connection=connection).exclude(status=InvoiceStatus.CANCELLED)
        assert list(standing.order_by("period").values_list("pk", "replaces", "current_charges")) == [
            (january.pk, None, Decimal("9750.00")),
            (Invoice.objects.get(replaces=february).pk, february.pk, FEBRUARY_AT_ORDER),
            (Invoice.objects.get(replaces=march).pk, march.pk, MARCH_AT_ORDER),
        ]
        assert_ledger_holds(connection)
