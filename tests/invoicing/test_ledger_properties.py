"""The ledger invariant on every path: hypothesis draws sequences of money movements on one connection
and checks the books after each step.

A rule-based state machine (hypothesis.stateful) works one connection of a flat-priced provider
(32.50 per kWh) with readings closing each month of 2024 up to August, on a clock standing still
from 1 February 2024 that only its own rule moves on. Its rules call the services themselves: the
next month billed (one invoice, or a billing run), a month billed twice (refused), payments (part,
full, above what is owed: the excess kept as credit where the provider allows it, refused where it
does not), their reversals, officers' credit and debit adjustments, credit notes (part or all of what
a bill charged, open or paid), re-rates of the newest bill (a credit note and a new bill replacing
it), refunds of the customer's credit balance, the overdue job (the late surcharge), payment plans
(made, an instalment paid, an instalment missed and the plan broken by the daily collections job).
The credit balance reaches the next bill as it is issued.

A model of the books is kept here in Decimals: each bill's balance, what it charged, what credit
notes took from it and whether it carries its late surcharge; the customer's credit balance; each
payment's allocations; each plan's status. Every rule knows from the model whether the service must
refuse; after each step the rows agree with the model, `assert_ledger_holds` checks DESIGN.md's
invariant (billed + adjustments - payments not reversed - credited = open balances; the credit
balance = credits in - applied - refunded; nothing negative), and a bill is open exactly when it owes.
A refused call writes nothing: no row, no number, no audit record.

The same test runs on SQLite (the embedded default, which stores decimals as REAL) and, in
tests/realstack.py's pass, on PostgreSQL. Examples are derandomized: CI sees the same sequences on
every run.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from auditing.models import AuditLog
from billing.months import add_months
from config.errors import DomainError
from invoicing import selectors
from invoicing.models import (
    OPEN_STATUSES,
    Adjustment,
    CreditEntry,
    CreditNote,
    CreditRefund,
    DocumentCounter,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentInstalment,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentReversal,
)
from invoicing.services import (
    adjustment_create,
    billing_run_chunk_bill,
    billing_run_start,
    credit_balance_of,
    credit_note_issue,
    credit_refund,
    dunning_run,
    instalment_amounts,
    invoice_issue,
    invoice_update,
    invoices_mark_overdue,
    payment_plan_create,
    payment_post,
    payment_reverse,
)
from providers.services import provider_update
from tests.factories import ConnectionFactory, CustomerFactory, ReadingFactory
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
RATE = Decimal("32.50")
ZONE = ZoneInfo(django_settings.TIME_ZONE)
FIRST_MONTH, MONTHS = date(2024, 1, 1), 8  # readings close January to August 2024
START = datetime(2024, 2, 1, 9, tzinfo=ZONE)  # January is over: it can be billed
LAST_DAY = date(2024, 10, 31)  # the clock goes no further
OVERPAID = Decimal("500.00")  # what a payment may bring beyond what is owed
BASIS_POINTS = st.integers(min_value=1, max_value=10_000)  # a share of a figure, 0.01% to all of it
BEYOND = st.integers(min_value=1, max_value=12_000)  # up to 120%: sometimes more than allowed
KWH = st.decimals(min_value=Decimal("1"), max_value=Decimal("3000"), places=4)  # arbitrary cents at 32.50
# What every write leaves: a refused call must leave all of it as it was.
WRITTEN = (
    Invoice,
    Payment,
    PaymentAllocation,
    PaymentReversal,
    Adjustment,
    CreditNote,
    CreditEntry,
    CreditRefund,
    PaymentPlan,
    PaymentInstalment,
    AuditLog,
)


def share(amount: Decimal, basis_points: int) -> Decimal:
    return max(CENT, (amount * basis_points / 10_000).quantize(CENT, rounding=ROUND_DOWN))


def charges_of(kwh: Decimal) -> Decimal:
    return (kwh * RATE).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class Bill:
    """A bill as the model has it."""

    pk: int
    period: date
    due_date: date
    late_surcharge: Decimal
    charged: Decimal  # current charges and net adjustments: what credit notes may take back
    balance: Decimal
    noted: Decimal = ZERO  # what credit notes took back from it
    surcharged: bool = False
    cancelled: bool = False

    @property
    def creditable(self) -> Decimal:
        return self.charged - self.noted


@dataclass
class Paid:
    """A payment as the model has it: what it settled on each bill (by the bill's place in the
    model) and what it left as credit."""

    pk: int
    shares: dict[int, Decimal]
    excess: Decimal
    reversed: bool = False


@dataclass
class Plan:
    """A payment plan as the model has it: the bills it covers (by their place in the model)."""

    pk: int
    bills: list[int]
    arrears: Decimal
    instalments: list[tuple[date, Decimal]]
    status: str = PaymentPlanStatus.KEPT


@dataclass
class Books:
    bills: list[Bill] = field(default_factory=list)
    payments: list[Paid] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    credit: Decimal = ZERO

    def settling(self, index: int) -> list[int]:
        """The bills a payment presented on bill `index` settles, oldest first."""
        period = self.bills[index].period
        return sorted(
            (at for at, bill in enumerate(self.bills) if bill.balance > 0 and bill.period <= period),
            key=lambda at: (self.bills[at].period, self.bills[at].pk),
        )

    def pay(self, pk: int, settling: list[int], amount: Decimal) -> Decimal:
        """A payment settles the bills `settling`, oldest first; returns its excess, kept as credit."""
        left, shares = amount, {}
        for at in settling:
            shares[at] = min(left, self.bills[at].balance)
            self.bills[at].balance -= shares[at]
            left -= shares[at]
        self.credit += left
        self.payments.append(Paid(pk=pk, shares=shares, excess=left))
        return left

    def surcharge_if_late(self, index: int, today: date) -> None:
        bill = self.bills[index]
        if bill.balance > 0 and bill.due_date < today and not bill.surcharged:
            bill.surcharged = True
            bill.balance += bill.late_surcharge
            bill.charged += bill.late_surcharge

    def issued(self, invoice: Invoice) -> Bill:
        """A new bill: the credit balance pays what it can of it."""
        applied = min(self.credit, invoice.current_charges)
        self.credit -= applied
        bill = Bill(
            pk=invoice.pk,
            period=invoice.period,
            due_date=invoice.due_date,
            late_surcharge=invoice.late_surcharge,
            charged=invoice.current_charges,
            balance=invoice.current_charges - applied,
        )
        self.bills.append(bill)
        return bill

    def credit_note(self, index: int, amount: Decimal) -> None:
        bill = self.bills[index]
        applied = min(amount, bill.balance)
        bill.balance -= applied
        bill.noted += amount
        self.credit += amount - applied

    def overdue_arrears(self, today: date) -> list[int]:
        return [
            at
            for at, bill in enumerate(self.bills)
            if not bill.cancelled and bill.balance > 0 and bill.due_date < today
        ]

    def plan_paid(self, plan: Plan) -> Decimal:
        return max(plan.arrears - sum((self.bills[at].balance for at in plan.bills), ZERO), ZERO)


def fingerprint(customer) -> tuple:
    """Everything a refused call must leave as it was."""
    return (
        tuple(model.objects.count() for model in WRITTEN),
        tuple(DocumentCounter.objects.order_by("pk").values_list("series", "year", "last")),
        tuple(
            Invoice.objects.order_by("pk").values_list(
                "status", "balance", "amount_paid", "adjustment_total", "credited", "credit_applied"
            )
        ),
        tuple(PaymentPlan.objects.order_by("pk").values_list("status")),
        credit_balance_of(customer),
    )


class LedgerMachine(RuleBasedStateMachine):
    """One connection's books under any sequence of the services; the fixtures are set as class
    attributes by the test (each example runs in its own transaction, rolled back at its end)."""

    provider = officer = method = None

    def __init__(self) -> None:
        super().__init__()
        self.travel = time_machine.travel(START, tick=False)
        self.clock = self.travel.start()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.books = Books()
        self.kwh: list[Decimal] = []
        self.lenient = False
        self.connection = None
        self.untouched = False  # the last step was refused: the books stand as last checked

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)
        self.travel.stop()

    # --- helpers ---------------------------------------------------------------------------------

    @property
    def today(self) -> date:
        return timezone.localdate()

    def attempt(self, refused: bool, call):
        """Call a service that must refuse (`refused`) or not; a refusal must write nothing."""
        before = fingerprint(self.connection.customer)
        try:
            result = call()
        except DomainError as error:
            assert refused, f"refused unexpectedly: {error.detail}"
            assert fingerprint(self.connection.customer) == before, f"{error.detail}, yet rows changed"
            self.untouched = True  # the books were checked before it, and nothing changed since
            return None
        assert not refused, f"accepted, though the model expected a refusal: {result!r}"
        return result

    def invoice(self, index: int) -> Invoice:
        return Invoice.objects.get(pk=self.books.bills[index].pk)

    def next_month(self) -> date:
        billed = [bill.period for bill in self.books.bills]
        return add_months(max(billed), 1) if billed else FIRST_MONTH

    # --- rules -----------------------------------------------------------------------------------

    @initialize(kwh=st.lists(KWH, min_size=MONTHS, max_size=MONTHS), lenient=st.booleans())
    def open_books(self, kwh: list[Decimal], lenient: bool) -> None:
        """A connection with fractional readings closing each month; the provider allows overpayments
        (their excess kept as credit) or not."""
        provider_update(provider=self.provider, allow_overpayment=lenient)
        self.lenient, self.kwh = lenient, kwh
        self.connection = ConnectionFactory(
            customer=CustomerFactory(provider=self.provider), provider=self.provider
        )
        total = Decimal(0)
        ReadingFactory(connection=self.connection, taken_at=datetime(2023, 12, 28, 9, tzinfo=ZONE))
        for step, units in enumerate(kwh):
            total += units
            month = add_months(FIRST_MONTH, step)
            ReadingFactory(
                connection=self.connection,
                taken_at=datetime(month.year, month.month, 28, 9, tzinfo=ZONE),
                import_peak=total,
            )

    @rule(days=st.integers(min_value=1, max_value=35))
    def time_passes(self, days: int) -> None:
        if self.today + timedelta(days=days) <= LAST_DAY:
            self.clock.shift(timedelta(days=days))

    @rule(by_run=st.booleans())
    def next_month_billed(self, by_run: bool) -> None:
        """The next month over is billed, by one invoice or by a billing run; a month not over is not."""
        period = self.next_month()
        if period >= add_months(FIRST_MONTH, MONTHS):
            return
        if period >= date(self.today.year, self.today.month, 1):
            if by_run:  # a bill of the running month may be issued by hand, but no run bills it
                self.attempt(True, lambda: billing_run_start(provider=self.provider, period=period))
            return
        if by_run:
            run, _ = self.attempt(
                False,
                lambda: billing_run_start(provider=self.provider, period=period, started_by=self.officer),
            )
            for chunk_id in selectors.pending_chunks(run):
                billing_run_chunk_bill(chunk_id=chunk_id)
            invoice = Invoice.objects.get(connection=self.connection, period=period, billing_run=run)
        else:
            invoice = self.attempt(
                False,
                lambda: invoice_issue(connection=self.connection, period=period, created_by=self.officer),
            )
        step = (period.year - FIRST_MONTH.year) * 12 + period.month - FIRST_MONTH.month
        # The month's own readings, whatever bills came before (re-rated on typed kWh or not).
        assert invoice.current_charges == charges_of(self.kwh[step]), (period, invoice.current_charges)
        self.books.issued(invoice)

    @precondition(lambda self: self.books.bills)
    @rule(data=st.data())
    def billed_month_billed_again(self, data) -> None:
        """A month billed already (or before the last month billed) is refused."""
        period = data.draw(st.sampled_from([bill.period for bill in self.books.bills]))
        self.attempt(
            True, lambda: invoice_issue(connection=self.connection, period=period, created_by=self.officer)
        )

    @precondition(lambda self: self.books.bills)
    @rule(data=st.data(), basis_points=BASIS_POINTS)
    def payment(self, data, basis_points: int) -> None:
        """A payment on any bill: what it and the earlier open bills owe, in part or in full, or more."""
        index = data.draw(st.integers(0, len(self.books.bills) - 1))
        bill, books = self.books.bills[index], self.books
        settling = [] if bill.cancelled else books.settling(index)
        owed = sum((books.bills[at].balance for at in settling), ZERO)
        amount = share(owed + OVERPAID, basis_points)
        refused = bill.cancelled or not settling or (amount > owed and not self.lenient)
        paid = self.attempt(
            refused,
            lambda: payment_post(
                invoice=self.invoice(index), amount=amount, method=self.method, received_by=self.officer
            ),
        )
        if refused:
            return
        payment, _ = paid
        excess = books.pay(payment.pk, settling, amount)
        assert payment.payable_after == owed - amount + excess

    @precondition(lambda self: self.books.payments)
    @rule(data=st.data())
    def reversal(self, data) -> None:
        """A payment reversed: what it settled is owed again (a bill past its due date reopens overdue
        and gets its late surcharge if it had none), what it left as credit is taken back. Refused
        once reversed, where a bill it settled was cancelled since (re-rated), or where the credit
        balance no longer holds what it left as credit."""
        books = self.books
        paid = data.draw(st.sampled_from(books.payments))
        cancelled = any(books.bills[at].cancelled for at, amount in paid.shares.items() if amount)
        refused = paid.reversed or cancelled or paid.excess > books.credit
        reversed_ = self.attempt(
            refused,
            lambda: payment_reverse(
                payment=Payment.objects.get(pk=paid.pk),
                kind="bounced",
                reason="Property test",
                reversed_by=self.officer,
            ),
        )
        if refused:
            return
        paid.reversed = True
        books.credit -= paid.excess
        for at, amount in paid.shares.items():
            if amount:
                books.bills[at].balance += amount
                books.surcharge_if_late(at, self.today)
        reversal, _ = reversed_
        assert [bill["balance"] for bill in reversal.reopened] == [
            f"{books.bills[at].balance}" for at, amount in sorted(paid.shares.items()) if amount
        ]

    @precondition(lambda self: self.books.bills)
    @rule(data=st.data(), debit=st.booleans(), basis_points=BEYOND, cents=st.integers(1, 500_000))
    def adjustment(self, data, debit: bool, basis_points: int, cents: int) -> None:
        """An officer's credit (part of the balance, or more: refused) or debit; a paid or cancelled
        bill takes none."""
        index = data.draw(st.integers(0, len(self.books.bills) - 1))
        bill = self.books.bills[index]
        amount = Decimal(cents) / 100 if debit else share(bill.balance, basis_points)
        # A credit takes the bill neither below zero nor below what its credit notes took back.
        too_much = not debit and amount > min(bill.balance, bill.creditable)
        refused = bill.cancelled or bill.balance == 0 or too_much
        self.attempt(
            refused,
            lambda: adjustment_create(
                invoice=self.invoice(index),
                amount=amount,
                direction="debit" if debit else "credit",
                reason="Property test",
                officer=self.officer,
            ),
        )
        if not refused:
            signed = amount if debit else -amount
            bill.balance += signed
            bill.charged += signed

    @precondition(lambda self: self.books.bills)
    @rule(data=st.data(), whole=st.booleans(), basis_points=BEYOND)
    def credit_note(self, data, whole: bool, basis_points: int) -> None:
        """A credit note of all that is creditable on a bill, or part of it (or more: refused), open
        or paid; beyond what the bill owes, it goes to the credit balance."""
        index = data.draw(st.integers(0, len(self.books.bills) - 1))
        bill = self.books.bills[index]
        amount = max(bill.creditable, CENT) if whole else share(bill.creditable, basis_points)
        refused = bill.cancelled or bill.creditable <= 0 or amount > bill.creditable
        self.attempt(
            refused,
            lambda: credit_note_issue(
                invoice=self.invoice(index), amount=amount, reason="Property test", issued_by=self.officer
            ),
        )
        if not refused:
            self.books.credit_note(index, amount)

    @precondition(lambda self: self.books.bills)
    @rule(data=st.data(), kwh=st.integers(min_value=0, max_value=3000))
    def rerate(self, data, kwh: int) -> None:
        """A bill re-rated on typed kWh: credited in full and replaced by a new bill, which the credit
        balance pays what it can of. Only the newest bill may be (a later one prints it as arrears)."""
        books = self.books
        index = data.draw(st.integers(0, len(books.bills) - 1))
        bill = books.bills[index]
        later = any(not other.cancelled and other.period > bill.period for other in books.bills)
        # Nor one owing more than credit notes may still take back (credited, then a payment reversed).
        refused = bill.cancelled or later or bill.balance > bill.creditable
        new = self.attempt(
            refused,
            lambda: invoice_update(
                invoice=self.invoice(index), updated_by=self.officer, kwh=Decimal(kwh), reason="Property test"
            ),
        )
        if refused:
            return
        if bill.creditable > 0:
            books.credit_note(index, bill.creditable)
        bill.cancelled = True
        assert new.current_charges == charges_of(Decimal(kwh))
        books.issued(new)

    @precondition(lambda self: self.books.bills)
    @rule(basis_points=BEYOND)
    def refund(self, basis_points: int) -> None:
        """Part or all of the credit balance refunded (or more: refused)."""
        amount = share(self.books.credit, basis_points)
        refused = amount > self.books.credit
        self.attempt(
            refused,
            lambda: credit_refund(
                customer=self.connection.customer,
                amount=amount,
                method=self.method,
                reason="Property test",
                officer=self.officer,
            ),
        )
        if not refused:
            self.books.credit -= amount

    @rule()
    def overdue_job(self) -> None:
        """The nightly job: bills unpaid after their due date turn overdue, with their late surcharge."""
        invoices_mark_overdue(provider=self.provider)
        for at, bill in enumerate(self.books.bills):
            if not bill.cancelled:
                self.books.surcharge_if_late(at, self.today)

    @precondition(lambda self: self.books.bills)
    @rule(instalments=st.integers(1, 3), days=st.integers(0, 40))
    def plan_made(self, instalments: int, days: int) -> None:
        """What is owed after due dates spread over monthly instalments: refused with a kept plan, or
        with nothing overdue."""
        books = self.books
        overdue = books.overdue_arrears(self.today)
        kept = any(plan.status == PaymentPlanStatus.KEPT for plan in books.plans)
        first = self.today + timedelta(days=days)
        plan = self.attempt(
            kept or not overdue,
            lambda: payment_plan_create(
                connection=self.connection,
                instalments=instalments,
                first_due_date=first,
                reason="Property test",
                created_by=self.officer,
            ),
        )
        if plan is None:
            return
        arrears = sum((books.bills[at].balance for at in overdue), ZERO)
        dates = [instalment.due_date for instalment in plan.instalments.order_by("position")]
        books.plans.append(
            Plan(
                pk=plan.pk,
                bills=overdue,
                arrears=arrears,
                instalments=list(zip(dates, instalment_amounts(arrears, instalments), strict=True)),
            )
        )
        assert plan.arrears == arrears

    def kept_plan(self) -> Plan | None:
        return next((plan for plan in self.books.plans if plan.status == PaymentPlanStatus.KEPT), None)

    @precondition(lambda self: self.kept_plan() is not None)
    @rule()
    def instalment_paid(self) -> None:
        """The next instalment not yet covered, paid on the plan's newest bill."""
        plan, books = self.kept_plan(), self.books
        left, due = books.plan_paid(plan), None
        for _, amount in plan.instalments:
            if left < amount:
                due = amount - left
                break
            left -= amount
        newest = max(plan.bills, key=lambda at: books.bills[at].period)
        settling = [] if books.bills[newest].cancelled else books.settling(newest)
        owed = sum((books.bills[at].balance for at in settling), ZERO)
        if due is None or owed == 0:
            return
        amount = min(due, owed)
        payment, _ = self.attempt(
            False,
            lambda: payment_post(
                invoice=self.invoice(newest), amount=amount, method=self.method, received_by=self.officer
            ),
        )
        books.pay(payment.pk, settling, amount)

    @rule()
    def collections_job(self) -> None:
        """The daily collections job reviews the kept plan: completed once its bills owe nothing of its
        arrears, broken once an instalment's due date passed without the payments to cover it."""
        dunning_run(provider=self.provider)
        plan = self.kept_plan()
        if plan is None:
            return
        left, missed = self.books.plan_paid(plan), False
        for due, amount in plan.instalments:
            missed = missed or (due < self.today and left < amount)
            left -= min(left, amount)
        if self.books.plan_paid(plan) >= plan.arrears:
            plan.status = PaymentPlanStatus.COMPLETED
        elif missed:
            plan.status = PaymentPlanStatus.BROKEN

    # --- the books -------------------------------------------------------------------------------

    @invariant()
    def books_balance(self) -> None:
        if self.connection is None or self.untouched:
            self.untouched = False
            return
        books = self.books
        rows = {row.pk: row for row in Invoice.objects.filter(connection=self.connection)}
        assert len(rows) == len(books.bills)
        for bill in books.bills:
            row = rows[bill.pk]
            assert (row.balance, row.status == InvoiceStatus.CANCELLED) == (bill.balance, bill.cancelled), (
                f"{row}: {row.balance} {row.status}, the model {bill}"
            )
            # Open exactly while it owes; overdue only past its due date.
            assert (row.status in OPEN_STATUSES) == (row.balance > 0), f"{row}: {row.status} at {row.balance}"
            assert row.status != InvoiceStatus.OVERDUE or row.due_date < self.today, row
        assert credit_balance_of(self.connection.customer) == books.credit
        for plan in books.plans:
            assert PaymentPlan.objects.get(pk=plan.pk).status == plan.status, plan
        assert_ledger_holds(self.connection)


@pytest.fixture
def ledger_machine(flat_provider, super_creator, cash):
    LedgerMachine.provider, LedgerMachine.officer, LedgerMachine.method = flat_provider, super_creator, cash
    return LedgerMachine


def test_any_sequence_of_bills_payments_and_corrections_keeps_the_ledger_to_the_cent(ledger_machine):
    run_state_machine_as_test(
        ledger_machine,
        settings=settings(
            max_examples=20,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            database=None,
            phases=(Phase.explicit, Phase.generate),  # a failure shows its steps at once, unshrunk
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
