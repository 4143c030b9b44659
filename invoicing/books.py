"""The books: a provider's journal (double entry, per day and account) and its tax report, read from
the documents themselves, so finance can post them to its ledger and reconcile them with the invoices
and payments.

Each document gives balanced entries on its own day:
- a bill, on its issue date: receivables debited with its current charges; each line credited to the
  account it belongs to (energy revenue by connection type, each tax to its authority's payable, each
  fixed charge to its authority, fees), its subtractions debited (a subsidy to its payer's receivable,
  estimates taken back, a credit brought from the previous bill) and a credit carried to the next bill
  credited. The lines add up to the current charges, so each bill balances.
- a payment, on the day it was received: cash by payment method debited, receivables credited; its
  reversal (a bounced cheque), on the day it was reversed: the opposite.
- an adjustment, on the day it was authorised: a debit raises receivables against late surcharges or
  officers' adjustments; a credit lowers them.
- a credit note, on its issue date: credit notes debited with its amount; receivables credited with
  what its bill still owed, customers' credit balances with the rest.
- the customer's credit balance moving: an overpayment's excess (receivables debited back, credit
  balances credited), credit applied to a new bill or taken back with a reversed overpayment (credit
  balances debited, receivables credited), a refund (credit balances debited, refunds paid by method
  credited).
A bill cancelled before credit notes existed (cancelled with no credit note) was never owed and is not
in the books; one cancelled or replaced since is in them, with the credit note that took it back.

Amounts are summed in whole cents in the database (`cents`): exact on SQLite as on PostgreSQL.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext

from config.errors import DomainError, NotFound
from invoicing.models import (
    Adjustment,
    AdjustmentDirection,
    AdjustmentKind,
    CreditEntry,
    CreditEntryKind,
    CreditNote,
    CreditRefund,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentReversal,
    cents,
)
from providers.models import Authority, ConnectionType, FixedCharge, Provider, Subsidy, TariffRow, TaxRule
from providers.tenancy import scope_to_provider

MAX_DAYS = 366
NO_MONEY = Decimal("0.00")
RECEIVABLES = ("receivables", "Receivables (customers)")
LATE_SURCHARGES = ("late-surcharges", "Late payment surcharges")
OFFICER_ADJUSTMENTS = ("officer-adjustments", "Officers' adjustments")
ESTIMATES = ("estimates-taken-back", "Estimated bills taken back")
CREDIT_NOTES = ("credit-notes", "Credit notes")
CUSTOMER_CREDIT = ("customer-credit", "Customers' credit balances")
BILL_CREDITS = ("bill-credits", "Credits carried between bills")
# Line kinds whose amounts lower a bill (debited); every other kind is credited.
DEBITED_LINES = frozenset({"subsidy", "estimate", "credit"})


class Account(NamedTuple):
    code: str
    name: str


@dataclass
class Entry:
    account: Account
    debit: Decimal = NO_MONEY
    credit: Decimal = NO_MONEY


@dataclass
class Day:
    day: date
    entries: list[Entry] = field(default_factory=list)

    @property
    def debit(self) -> Decimal:
        return sum((entry.debit for entry in self.entries), NO_MONEY)

    @property
    def credit(self) -> Decimal:
        return sum((entry.credit for entry in self.entries), NO_MONEY)


@dataclass
class Journal:
    provider: str
    first: date
    last: date
    days: list[Day]

    @property
    def totals(self) -> list[Entry]:
        """Each account's debits and credits over the whole range, in account order."""
        summed: dict[Account, Entry] = {}
        for day in self.days:
            for entry in day.entries:
                total = summed.setdefault(entry.account, Entry(entry.account))
                total.debit += entry.debit
                total.credit += entry.credit
        return sorted(summed.values(), key=lambda entry: entry.account.code)

    @property
    def debit(self) -> Decimal:
        return sum((day.debit for day in self.days), NO_MONEY)

    @property
    def credit(self) -> Decimal:
        return sum((day.credit for day in self.days), NO_MONEY)


def date_range(first: date | None, last: date | None) -> tuple[date, date]:
    """A checked journal range: both ends given, in order, at most a year and a day."""
    if first is None or last is None:
        raise DomainError(gettext("Give the first and the last day of the journal (from, to)."), field="from")
    if last < first:
        raise DomainError(
            gettext("The last day (%(last)s) is before the first (%(first)s).")
            % {"last": last, "first": first},
            field="to",
        )
    if (last - first).days + 1 > MAX_DAYS:
        raise DomainError(
            gettext("A journal covers at most %(max_days)s days; ask for a shorter range.")
            % {"max_days": MAX_DAYS},
            field="to",
        )
    return first, last


def _amount(whole_cents: float | int | None) -> Decimal:
    return Decimal(int(whole_cents or 0)) / 100


def _moments(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in the site's time zone: the journal's days are local."""
    zone = timezone.get_current_timezone()
    return (
        datetime.combine(first, time.min, tzinfo=zone),
        datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone),
    )


def _row_accounts(provider: Provider, row_ids: dict[str, set[int]]) -> dict[tuple[str, int], Account]:
    """The account of each line's source row: its connection type's revenue for an energy row, its
    authority's for a tax, fixed charge or subsidy row."""
    accounts: dict[tuple[str, int], Account] = {}
    types = dict(
        (pk, (code, description))
        for pk, code, description in ConnectionType.objects.filter(provider=provider).values_list(
            "pk", "code", "description"
        )
    )
    authorities = {
        pk: (code, name)
        for pk, code, name in Authority.objects.filter(provider=provider).values_list("pk", "code", "name")
    }
    for pk, type_id in TariffRow.objects.filter(provider=provider, pk__in=row_ids["energy"]).values_list(
        "pk", "connection_type_id"
    ):
        code, description = types.get(type_id, ("all", "every connection type"))
        accounts["energy", pk] = Account(f"energy:{code}", f"Energy revenue: {description} ({code})")
    for kind, model, authority_field, prefix, title in (
        ("tax", TaxRule, "authority_id", "tax", "Tax payable"),
        ("fixed", FixedCharge, "authority_id", "fixed", "Fixed charges payable"),
        ("subsidy", Subsidy, "payer_id", "subsidy", "Subsidy receivable"),
    ):
        for pk, authority_id in model.objects.filter(provider=provider, pk__in=row_ids[kind]).values_list(
            "pk", authority_field
        ):
            code, name = authorities[authority_id]
            accounts[kind, pk] = Account(f"{prefix}:{code}", f"{title}: {name} ({code})")
    return accounts


def _line_account(kind: str, label: str, row_id: int | None, rows: dict[tuple[str, int], Account]) -> Account:
    if (kind, row_id) in rows:
        return rows[kind, row_id]
    if kind == "estimate":
        return Account(*ESTIMATES)
    if kind in ("credit", "carried"):
        return Account(*BILL_CREDITS)
    if kind == "fee":
        return Account(f"fees:{label.lower()}"[:60], f"Fees: {label}")
    # A line whose row is gone from the schedule still lands in its kind's account, never nowhere.
    return Account(f"{kind}:unknown", f"{kind.capitalize()} (row {row_id})")


def journal_for(*, provider: Provider, first: date, last: date) -> Journal:
    """The provider's journal from `first` to `last` (both included): each day's entries by account,
    each day balanced (debits = credits)."""
    first, last = date_range(first, last)
    start, end = _moments(first, last)
    by_day: dict[date, dict[Account, Entry]] = defaultdict(dict)

    def post(day: date, account: Account, *, debit: Decimal = NO_MONEY, credit: Decimal = NO_MONEY) -> None:
        entry = by_day[day].setdefault(account, Entry(account))
        entry.debit += debit
        entry.credit += credit

    credited_back = Exists(CreditNote.objects.filter(invoice=OuterRef("pk")))
    billed = Invoice.objects.filter(
        ~Q(status=InvoiceStatus.CANCELLED) | Q(credited_back),
        provider=provider,
        issue_date__range=(first, last),
    )
    for day, total in billed.values_list("issue_date").annotate(total=Sum(cents("current_charges"))):
        post(day, Account(*RECEIVABLES), debit=_amount(total))

    lines = list(
        InvoiceLine.objects.filter(invoice__in=billed)
        .values_list("invoice__issue_date", "kind", "row_id", "label")
        .annotate(total=Sum(cents("amount")))
        .order_by()
    )
    row_ids: dict[str, set[int]] = defaultdict(set)
    for _, kind, row_id, _, _ in lines:
        if row_id is not None:
            row_ids[kind].add(row_id)
    rows = _row_accounts(provider, row_ids)
    for day, kind, row_id, label, total in lines:
        account = _line_account(kind, label, row_id, rows)
        if kind in DEBITED_LINES:
            post(day, account, debit=_amount(total))
        else:
            post(day, account, credit=_amount(total))

    methods = dict(PaymentMethod.objects.values_list("pk", "name"))
    codes = dict(PaymentMethod.objects.values_list("pk", "code"))
    received = (
        Payment.objects.filter(provider=provider, received_at__gte=start, received_at__lt=end)
        .annotate(day=TruncDate("received_at"))
        .values_list("day", "method_id")
        .annotate(total=Sum(cents("amount")))
        .order_by()
    )
    for day, method_id, total in received:
        amount = _amount(total)
        post(day, Account(f"cash:{codes[method_id]}", f"Cash: {methods[method_id]}"), debit=amount)
        post(day, Account(*RECEIVABLES), credit=amount)
    taken_back = (
        PaymentReversal.objects.filter(provider=provider, reversed_at__gte=start, reversed_at__lt=end)
        .annotate(day=TruncDate("reversed_at"))
        .values_list("day", "payment__method_id")
        .annotate(total=Sum(cents("amount")))
        .order_by()
    )
    for day, method_id, total in taken_back:
        amount = _amount(total)
        post(day, Account(*RECEIVABLES), debit=amount)
        post(day, Account(f"cash:{codes[method_id]}", f"Cash: {methods[method_id]}"), credit=amount)

    adjusted = (
        Adjustment.objects.filter(provider=provider, created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at"))
        .values_list("day", "kind", "direction")
        .annotate(total=Sum(cents("amount")))
        .order_by()
    )
    for day, kind, direction, total in adjusted:
        amount = _amount(total)
        other = Account(*(LATE_SURCHARGES if kind == AdjustmentKind.LATE_SURCHARGE else OFFICER_ADJUSTMENTS))
        if direction == AdjustmentDirection.DEBIT:
            post(day, Account(*RECEIVABLES), debit=amount)
            post(day, other, credit=amount)
        else:
            post(day, other, debit=amount)
            post(day, Account(*RECEIVABLES), credit=amount)

    notes = (
        CreditNote.objects.filter(provider=provider, issue_date__range=(first, last))
        .values_list("issue_date")
        .annotate(amount=Sum(cents("amount")), applied=Sum(cents("applied")), kept=Sum(cents("to_balance")))
        .order_by()
    )
    for day, amount, applied, kept in notes:
        post(day, Account(*CREDIT_NOTES), debit=_amount(amount))
        post(day, Account(*RECEIVABLES), credit=_amount(applied))
        post(day, Account(*CUSTOMER_CREDIT), credit=_amount(kept))

    moved = (
        CreditEntry.objects.filter(
            provider=provider,
            created_at__gte=start,
            created_at__lt=end,
            kind__in=(CreditEntryKind.OVERPAYMENT, CreditEntryKind.APPLIED, CreditEntryKind.REVERSAL),
        )
        .annotate(day=TruncDate("created_at"))
        .values_list("day", "kind")
        .annotate(total=Sum(cents("amount")))
        .order_by()
    )
    for day, kind, total in moved:
        amount = abs(_amount(total))
        if kind == CreditEntryKind.OVERPAYMENT:
            post(day, Account(*RECEIVABLES), debit=amount)
            post(day, Account(*CUSTOMER_CREDIT), credit=amount)
        else:
            post(day, Account(*CUSTOMER_CREDIT), debit=amount)
            post(day, Account(*RECEIVABLES), credit=amount)

    refunded = (
        CreditRefund.objects.filter(provider=provider, created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at"))
        .values_list("day", "method_id")
        .annotate(total=Sum(cents("amount")))
        .order_by()
    )
    for day, method_id, total in refunded:
        amount = _amount(total)
        post(day, Account(*CUSTOMER_CREDIT), debit=amount)
        post(
            day, Account(f"refunds:{codes[method_id]}", f"Refunds paid: {methods[method_id]}"), credit=amount
        )

    days = [
        Day(day, sorted(entries.values(), key=lambda entry: entry.account.code))
        for day, entries in sorted(by_day.items())
    ]
    return Journal(provider=provider.code, first=first, last=last, days=days)


class TaxRow(NamedTuple):
    month: date
    authority: str
    tax: str
    bills: int
    amount: Decimal


def tax_report_for(*, provider: Provider, year: int) -> list[TaxRow]:
    """Each tax billed in `year` per authority and month (by the bills' issue dates; bills cancelled or
    replaced left out), with how many bills carried it (a bill split by a price change has a line of
    each tax per part)."""
    if not 2000 <= year <= 2100:
        raise DomainError(
            gettext("%(year)s is not a year the books can hold.") % {"year": year}, field="year"
        )
    authorities = dict(Authority.objects.filter(provider=provider).values_list("pk", "code"))
    taxes = {
        pk: (authorities[authority_id], name)
        for pk, authority_id, name in TaxRule.objects.filter(provider=provider).values_list(
            "pk", "authority_id", "name"
        )
    }
    summed = (
        InvoiceLine.objects.filter(kind="tax", invoice__provider=provider, invoice__issue_date__year=year)
        .exclude(invoice__status=InvoiceStatus.CANCELLED)
        .annotate(month=TruncMonth("invoice__issue_date"))
        .values_list("month", "row_id")
        .annotate(total=Sum(cents("amount")), bills=Count("invoice", distinct=True))
        .order_by()
    )
    found: dict[tuple[date, str, str], list] = {}
    for month, row_id, total, bills in summed:
        authority, name = taxes.get(row_id, ("?", f"tax row {row_id}"))
        key = (month if isinstance(month, date) else month.date(), authority, name)
        row = found.setdefault(key, [0, NO_MONEY])
        row[0] += bills
        row[1] += _amount(total)
    return [
        TaxRow(month, authority, tax, bills, amount)
        for (month, authority, tax), (bills, amount) in sorted(found.items())
    ]


def books_provider_for(*, user, code: str | None) -> Provider:
    """The provider whose books the caller reads: their own; a platform user names one (`code`).
    A provider the caller may not see is not found."""
    providers = scope_to_provider(Provider.objects.all(), user, field="pk")
    if code:
        found = providers.filter(code=code).first()
        if found is None:
            raise NotFound(gettext("No provider %(code)s.") % {"code": code})
        return found
    if user.provider_id is None:
        raise DomainError(gettext("Name the provider whose books to read (provider=CODE)."), field="provider")
    return providers.get()


JOURNAL_HEADER = ("date", "account", "account_name", "debit", "credit")
TAX_HEADER = ("month", "authority", "tax", "bills", "amount")


def journal_rows(journal: Journal) -> Iterator[tuple]:
    """The journal as CSV rows: one per day and account, then the range's totals per account."""
    yield JOURNAL_HEADER
    for day in journal.days:
        for entry in day.entries:
            yield (day.day.isoformat(), entry.account.code, entry.account.name, entry.debit, entry.credit)
    for entry in journal.totals:
        yield ("total", entry.account.code, entry.account.name, entry.debit, entry.credit)


def tax_rows(rows: list[TaxRow]) -> Iterator[tuple]:
    yield TAX_HEADER
    for row in rows:
        yield (f"{row.month:%Y-%m}", row.authority, row.tax, row.bills, row.amount)
