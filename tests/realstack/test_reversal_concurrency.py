"""A payment's reversal racing on PostgreSQL with payments on the same connection, a second reversal of
the same payment and the overdue job (threads, each on its own database connection, released at once).

The connection's lock serialises the money paths, and every one locks invoices in id order: nothing
deadlocks, the payment is reversed once, the later payments keep what they settled, the late surcharge
is added once, and the ledger holds to the cent whatever order they ran in.
"""

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.roles import Role
from invoicing.models import (
    Adjustment,
    AdjustmentKind,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    PaymentReversal,
)
from invoicing.services import invoice_issue, invoices_mark_overdue, payment_post, payment_reverse
from tests.factories import UserFactory, billable_connection
from tests.invoicing.ledger import assert_ledger_holds
from tests.realstack.test_payment_concurrency import (  # noqa: F401 (fixtures, passed by name)
    cashier,
    creator,
    flat_provider,
    pay,
    payments_and_refusals,
)
from tests.realstack.threads import run_together

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

# January's bill is due 10 February 2024 (past), February's 10 March (not yet).
TODAY = datetime(2024, 3, 2, 9, tzinfo=UTC)
REFUSALS = {"Overpayment", "InvoicePaid", "PaymentReversed"}


@pytest.fixture
def officer(flat_provider):  # noqa: F811
    return UserFactory(provider=flat_provider, roles=[Role.SUPER_CREATOR])


def reverse(payment_id: int, officer) -> Callable[[], object]:
    """A reversal from a thread: it loads its own copy of the payment."""
    return lambda: payment_reverse(
        payment=Payment.objects.get(pk=payment_id),
        kind="bounced",
        reason="Cheque returned unpaid",
        reversed_by=officer,
    )


def test_a_reversal_racing_with_payments_on_the_same_connection_keeps_the_ledger(
    flat_provider,  # noqa: F811
    creator,  # noqa: F811
    cashier,  # noqa: F811
    officer,
    time_machine,
):
    time_machine.move_to(TODAY)
    connection = billable_connection(flat_provider, months=2)
    january, february = (
        invoice_issue(connection=connection, period=date(2024, month, 1), created_by=creator)
        for month in (1, 2)
    )
    method = PaymentMethod.objects.get(code="bank-counter")
    # Settles January (9750.00) and 2250.00 of February: the payment that bounces.
    bounced, _ = payment_post(
        invoice=february, amount=Decimal("12000.00"), method=method, received_by=cashier
    )

    outcomes = run_together(
        [
            reverse(bounced.pk, officer),
            reverse(bounced.pk, officer),
            lambda: invoices_mark_overdue(provider=flat_provider),
            *(pay(february.pk, "975.00", cashier) for _ in range(12)),
        ]
    )

    first, second, overdue, *paying = outcomes
    reversals = [outcome for outcome in (first, second) if isinstance(outcome, tuple)]
    refused = [outcome for outcome in (first, second) if isinstance(outcome, Exception)]
    assert (len(reversals), [type(refusal).__name__ for refusal in refused]) == (1, ["PaymentReversed"])
    assert not isinstance(overdue, Exception), overdue
    payments, refusals = payments_and_refusals(paying)
    assert set(Counter(type(refusal).__name__ for refusal in refusals)) <= REFUSALS, refusals
    assert payments, "no payment went through"

    assert PaymentReversal.objects.filter(payment=bounced).count() == 1
    # The bounced payment's allocations stay as its history; the later ones keep what they settled.
    assert list(
        PaymentAllocation.objects.filter(payment=bounced)
        .order_by("invoice_id")
        .values_list("invoice", "amount")
    ) == [(january.pk, Decimal("9750.00")), (february.pk, Decimal("2250.00"))]
    for payment in payments:
        assert sum(row.amount for row in payment.allocations.all()) == payment.amount
    # January was past due when it was reopened (or when the job found it open): surcharged once.
    assert Adjustment.objects.filter(invoice=january, kind=AdjustmentKind.LATE_SURCHARGE).count() == 1
    assert not Adjustment.objects.filter(invoice=february).exists()
    for invoice in Invoice.objects.filter(connection=connection):
        assert (invoice.balance == 0) == (invoice.status == InvoiceStatus.PAID), invoice
    assert_ledger_holds(connection)
