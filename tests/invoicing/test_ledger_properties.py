"""The ledger invariant under any sequence of payments, adjustments, late surcharges, credit notes,
re-rates and refunds.

Random sequences of money movements are posted on two bills of one connection (January's, and
February's, which carries January as arrears): payments, officers' adjustments, credit notes,
re-rates of February (a credit note and a new bill replacing it) and refunds of the customer's credit
balance through the API, the late surcharge through the overdue job; the provider allows overpayments
(their excess kept as credit) or not. Whatever the sequence, no request answers 5xx, every figure
agrees with a model of the ledger kept here in Decimals (each bill's balance, what credit notes may
still take from it, the customer's credit balance), and the ledger invariant holds to the cent. The same test runs on SQLite (the embedded default, which stores decimals as REAL) and,
in tests/realstack.py's pass, on PostgreSQL. Examples are derandomized: CI sees the same sequences
on every run.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from accounts.roles import Role
from invoicing.models import Invoice
from invoicing.services import credit_balance_of, invoice_issue, invoices_mark_overdue
from providers.services import provider_update
from tests.factories import ConnectionFactory, CustomerFactory, ReadingFactory
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
CENT = Decimal("0.01")
MONTHS = (date(2024, 1, 1), date(2024, 2, 1))
BASIS_POINTS = st.integers(min_value=1, max_value=10_000)  # a share of what is owed, 0.01% to all of it

# kWh with four decimals at the flat 32.50: January and February come to arbitrary cents.
kwh = st.decimals(min_value=Decimal("1"), max_value=Decimal("3000"), places=4)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), st.integers(0, 1), BASIS_POINTS),
        st.tuples(st.just("credit"), st.integers(0, 1), BASIS_POINTS),
        st.tuples(st.just("debit"), st.integers(0, 1), st.integers(min_value=1, max_value=500_000)),
        st.tuples(st.just("overdue"), st.integers(0, 1), st.just(0)),
        st.tuples(st.just("credit_note"), st.integers(0, 1), BASIS_POINTS),
        st.tuples(st.just("refund"), st.just(0), BASIS_POINTS),
        st.tuples(st.just("rerate"), st.just(1), st.integers(min_value=0, max_value=3000)),
    ),
    min_size=1,
    max_size=12,
)
OVERPAID = Decimal("500.00")  # what a payment may bring beyond what is owed, where that is allowed
# Every rule that reads today (a credit note's date, a re-rate's new bill) reads this day.
TODAY = datetime(2024, 3, 20, 12, tzinfo=ZoneInfo("Asia/Karachi"))


@dataclass
class Books:
    """What the ledger should say, kept by hand: each bill's balance, whether it is overdue, what it
    charged (with adjustments) and what credit notes took from it, and the customer's credit balance."""

    bills: list[Invoice]
    balance: list[Decimal] = field(default_factory=list)
    overdue: list[bool] = field(default_factory=lambda: [False, False])
    charged: list[Decimal] = field(default_factory=list)
    noted: list[Decimal] = field(default_factory=lambda: [Decimal("0.00"), Decimal("0.00")])
    credit: Decimal = Decimal("0.00")

    def owed_up_to(self, index: int) -> Decimal:
        return sum(self.balance[: index + 1], Decimal("0.00"))

    def creditable(self, index: int) -> Decimal:
        return self.charged[index] - self.noted[index]

    def pay(self, index: int, amount: Decimal) -> None:
        for earlier in range(index + 1):  # oldest first
            share = min(amount, self.balance[earlier])
            self.balance[earlier] -= share
            amount -= share
        self.credit += amount  # an overpayment's excess, where allowed

    def adjust(self, index: int, signed: Decimal) -> None:
        self.balance[index] += signed
        self.charged[index] += signed

    def mark_overdue(self, today: date) -> None:
        for index, bill in enumerate(self.bills):
            if not self.overdue[index] and bill.due_date < today and self.balance[index] > 0:
                self.overdue[index] = True
                self.adjust(index, bill.late_surcharge)

    def credit_note(self, index: int, amount: Decimal) -> None:
        applied = min(amount, self.balance[index])
        self.balance[index] -= applied
        self.noted[index] += amount
        self.credit += amount - applied

    def replace(self, index: int, bill: Invoice) -> None:
        """A re-rate: the bill credited in full, the new one paid from the credit balance."""
        self.credit_note(index, self.creditable(index))
        applied = min(self.credit, bill.current_charges)
        self.credit -= applied
        self.bills[index] = bill
        self.balance[index] = bill.current_charges - applied
        self.charged[index], self.noted[index], self.overdue[index] = (
            bill.current_charges,
            Decimal("0.00"),
            False,
        )


def share(amount: Decimal, basis_points: int) -> Decimal:
    return max(CENT, (amount * basis_points / 10_000).quantize(CENT, rounding=ROUND_DOWN))


def bills_for(provider, creator, january: Decimal, february: Decimal) -> list[Invoice]:
    """A connection with fractional readings for January and February 2024, both billed."""
    connection = ConnectionFactory(customer=CustomerFactory(provider=provider), provider=provider)
    zone = ZoneInfo(django_settings.TIME_ZONE)
    for month, total in ((12, Decimal(0)), (1, january), (2, january + february)):
        year = 2023 if month == 12 else 2024
        ReadingFactory(
            connection=connection, taken_at=datetime(year, month, 28, 9, tzinfo=zone), import_peak=total
        )
    return [invoice_issue(connection=connection, period=month, created_by=creator) for month in MONTHS]


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # a failure shows its sequence at once, unshrunk
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(january=kwh, february=kwh, steps=steps, lenient=st.booleans())
def test_any_sequence_of_payments_adjustments_and_credits_keeps_the_ledger_to_the_cent(
    as_role, super_creator, flat_provider, cash, january, february, steps, lenient
):
    # Each example starts from the same database, on the same day (its token issued that day too).
    with time_machine.travel(TODAY, tick=False), transaction.atomic():
        api = as_role(super_creator, Role.SUPER_CREATOR)
        provider_update(provider=flat_provider, allow_overpayment=lenient)
        bills = bills_for(flat_provider, super_creator, january, february)
        customer = bills[0].customer
        books = Books(
            bills=bills,
            balance=[bill.balance for bill in bills],
            charged=[bill.current_charges for bill in bills],
        )

        for action, index, figure in steps:
            bill = books.bills[index]
            if action == "overdue":
                today = bill.due_date + timedelta(days=1)
                invoices_mark_overdue(provider=flat_provider, today=today)
                books.mark_overdue(today)
                continue
            if action == "pay":
                owed = books.owed_up_to(index)
                amount = share(owed + (OVERPAID if lenient else 0), figure)
                response = api.post(
                    "/api/payments",
                    {"billId": bill.pk, "amount": f"{amount}", "method": cash.code},
                    format="json",
                )
                expected = 201 if owed > 0 else 409
            elif action in ("credit", "debit"):
                amount = share(books.balance[index], figure) if action == "credit" else Decimal(figure) / 100
                response = api.post(
                    "/api/adjustments",
                    {
                        "billId": bill.pk,
                        "amount": f"{amount}",
                        "direction": action,
                        "reason": "Property test",
                    },
                    format="json",
                )
                expected = 201 if books.balance[index] > 0 else 409  # a paid bill takes no adjustment
            elif action == "credit_note":
                amount = share(books.creditable(index), figure)
                response = api.post(
                    "/api/credit-notes",
                    {"billId": bill.pk, "amount": f"{amount}", "reason": "Property test"},
                    format="json",
                )
                expected = 201 if books.creditable(index) > 0 else 400  # credited in full
            elif action == "refund":
                amount = share(books.credit, figure)
                response = api.post(
                    "/api/credit-refunds",
                    {"customerId": customer.pk, "amount": f"{amount}", "method": cash.code, "reason": "Test"},
                    format="json",
                )
                expected = 201 if books.credit > 0 else 400
            else:  # re-rate February on new kWh: a credit note for it and a new bill replacing it
                response = api.put(f"/api/invoices/{bill.pk}", {"kwhConsumed": f"{figure}"}, format="json")
                expected = 200
            assert response.status_code < 500, response.content
            assert response.status_code == expected, response.json()
            if expected >= 400:
                continue
            body = response.json()
            if action == "pay":
                books.pay(index, amount)
                assert body["payableAfter"] == f"{books.owed_up_to(index)}"
            elif action in ("credit", "debit"):
                books.adjust(index, amount if action == "debit" else -amount)
                assert body["newBalance"] == f"{books.balance[index]}"
            elif action == "credit_note":
                books.credit_note(index, amount)
                assert body["newBalance"] == f"{books.balance[index]}"
            elif action == "refund":
                books.credit -= amount
                assert body["newBalance"] == f"{books.credit}"
            else:
                replacement = Invoice.objects.get(pk=body["invoiceId"])
                assert replacement.current_charges == (Decimal(figure) * Decimal("32.50")).quantize(
                    CENT, rounding=ROUND_HALF_UP
                )
                books.replace(index, replacement)
                assert body["balance"] == f"{books.balance[index]}"

        assert [Invoice.objects.get(pk=bill.pk).balance for bill in books.bills] == books.balance
        assert credit_balance_of(customer) == books.credit
        assert_ledger_holds(bills[0].connection)
        transaction.set_rollback(True)
