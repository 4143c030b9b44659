"""The ledger invariant under any sequence of part payments, reversals, credits, debits and late
surcharges (credit notes, re-rates and refunds: test_ledger_properties.py).

Random sequences of money movements are posted on two bills of one connection (January's, and
February's, which carries January as arrears): payments, their reversals and officers' adjustments
through the API, the late surcharge through the overdue job (and through a reversal that reopens a
bill past its due date: the clock stands after both due dates). Whatever the sequence, no request answers 5xx, every
figure agrees with a model of the ledger kept here in Decimals, and the ledger invariant holds to
the cent. The same test runs on SQLite (the embedded default, which stores decimals as REAL) and,
in tests/realstack.py's pass, on PostgreSQL. Examples are derandomized: CI sees the same sequences
on every run.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from accounts.roles import Role
from invoicing.models import Invoice
from invoicing.services import invoice_issue, invoices_mark_overdue
from tests.factories import ConnectionFactory, CustomerFactory, ReadingFactory
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
CENT = Decimal("0.01")
MONTHS = (date(2024, 1, 1), date(2024, 2, 1))
AFTER_BOTH_DUE = datetime(2024, 4, 1, 9, tzinfo=UTC)  # payments and reversals are made on this day
BASIS_POINTS = st.integers(min_value=1, max_value=10_000)  # a share of what is owed, 0.01% to all of it

# kWh with four decimals at the flat 32.50: January and February come to arbitrary cents.
kwh = st.decimals(min_value=Decimal("1"), max_value=Decimal("3000"), places=4)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), st.integers(0, 1), BASIS_POINTS),
        st.tuples(st.just("credit"), st.integers(0, 1), BASIS_POINTS),
        st.tuples(st.just("debit"), st.integers(0, 1), st.integers(min_value=1, max_value=500_000)),
        st.tuples(st.just("overdue"), st.integers(0, 1), st.just(0)),
        st.tuples(st.just("reverse"), st.integers(0, 9), st.just(0)),  # the n-th payment posted so far
    ),
    min_size=1,
    max_size=10,
)


@dataclass
class Books:
    """What the ledger should say, kept by hand: each bill's balance and whether it is overdue."""

    bills: list[Invoice]
    balance: list[Decimal] = field(default_factory=list)
    overdue: list[bool] = field(default_factory=lambda: [False, False])  # marked, and so surcharged
    # Each payment posted: its id, what it settled on each bill, and whether it was reversed.
    payments: list[dict] = field(default_factory=list)

    def owed_up_to(self, index: int) -> Decimal:
        return sum(self.balance[: index + 1], Decimal("0.00"))

    def pay(self, index: int, amount: Decimal) -> list[Decimal]:
        shares = [Decimal("0.00"), Decimal("0.00")]
        for earlier in range(index + 1):  # oldest first
            shares[earlier] = min(amount, self.balance[earlier])
            self.balance[earlier] -= shares[earlier]
            amount -= shares[earlier]
        return shares

    def reverse(self, shares: list[Decimal]) -> None:
        """What the payment settled is owed again; a bill reopened past its due date (every bill, on
        this test's clock) is marked and surcharged if it was not yet."""
        for index, share in enumerate(shares):
            if share == 0:
                continue
            self.balance[index] += share
            if not self.overdue[index]:
                self.overdue[index] = True
                self.balance[index] += self.bills[index].late_surcharge

    def mark_overdue(self, today: date) -> None:
        for index, bill in enumerate(self.bills):
            if not self.overdue[index] and bill.due_date < today and self.balance[index] > 0:
                self.overdue[index] = True
                self.balance[index] += bill.late_surcharge


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
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # a failure shows its sequence at once, unshrunk
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(january=kwh, february=kwh, steps=steps)
# A payment over both bills reversed after a later one on February, then reversed again (refused).
@example(
    january=Decimal("300.1234"),
    february=Decimal("250.5"),
    steps=[("pay", 0, 4000), ("pay", 1, 10_000), ("pay", 1, 3000), ("reverse", 1, 0), ("reverse", 1, 0)],
)
def test_any_sequence_of_payments_reversals_and_adjustments_keeps_the_ledger_to_the_cent(
    as_role, super_creator, flat_provider, cash, time_machine, january, february, steps
):
    time_machine.move_to(AFTER_BOTH_DUE, tick=False)
    api = as_role(super_creator, Role.SUPER_CREATOR)
    with transaction.atomic():  # each example starts from the same database
        bills = bills_for(flat_provider, super_creator, january, february)
        books = Books(bills=bills, balance=[bill.balance for bill in bills])

        for action, index, figure in steps:
            if action == "reverse":
                if not books.payments:
                    continue
                payment = books.payments[index % len(books.payments)]
                response = api.post(
                    f"/api/payments/{payment['id']}/reverse",
                    {"kind": "bounced", "reason": "Property test"},
                    format="json",
                )
                assert response.status_code == (409 if payment["reversed"] else 201), response.json()
                if not payment["reversed"]:
                    books.reverse(payment["shares"])
                    payment["reversed"] = True
                    balances = [bill["balance"] for bill in response.json()["reversal"]["reopened"]]
                    assert balances == [
                        f"{books.balance[i]}" for i, share in enumerate(payment["shares"]) if share
                    ]
                continue
            bill = bills[index]
            if action == "overdue":
                today = bill.due_date + timedelta(days=1)
                invoices_mark_overdue(provider=flat_provider, today=today)
                books.mark_overdue(today)
                continue
            if action == "pay":
                amount = share(books.owed_up_to(index), figure)
                response = api.post(
                    "/api/payments",
                    {"billId": bill.pk, "amount": f"{amount}", "method": cash.code},
                    format="json",
                )
                settles = books.owed_up_to(index) > 0
            else:
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
                settles = books.balance[index] > 0  # a paid bill takes no adjustment
            assert response.status_code < 500, response.content
            assert response.status_code == (201 if settles else 409), response.json()
            if not settles:
                continue
            if action == "pay":
                shares = books.pay(index, amount)
                books.payments.append(
                    {"id": response.json()["paymentId"], "shares": shares, "reversed": False}
                )
                assert response.json()["payableAfter"] == f"{books.owed_up_to(index)}"
            else:
                books.balance[index] += amount if action == "debit" else -amount
                assert response.json()["newBalance"] == f"{books.balance[index]}"

        assert [Invoice.objects.get(pk=bill.pk).balance for bill in bills] == books.balance
        assert_ledger_holds(bills[0].connection)
        transaction.set_rollback(True)
