"""Bank payment files: each row posted through the payment service, a reference posted once, every
refusal with its reason, provider isolation, a clerk's reach, and a chunk taken up again after a crash."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import Message, MessageKind
from accounts.roles import Role
from auditing.models import AuditLog
from auditing.services import audit_verify
from config.errors import DomainError
from invoicing import services
from invoicing.models import (
    Invoice,
    Payment,
    PaymentFileRow,
    PaymentFileStatus,
    PaymentMethod,
    RowOutcome,
)
from invoicing.selectors import payment_files_stalled
from invoicing.services import payment_files as payment_files_module
from invoicing.services.credit_balance import credit_balance_of
from invoicing.tasks import dispatch_payment_file
from providers.services import provider_update
from tests.factories import FlatTariffFactory, PaymentFileFormatFactory, UserFactory, billable_connection
from tests.invoicing.bank_files import bank_csv
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
ZONE = ZoneInfo(settings.TIME_ZONE)


@pytest.fixture
def bills(connection, creator):
    """January and February 2024 of one connection, 9,750.00 each, issued by the clerk."""
    return [
        services.invoice_issue(connection=connection, period=date(2024, month, 1), created_by=creator)
        for month in (1, 2)
    ]


@pytest.fixture
def bank(flat_provider, cash):
    return PaymentFileFormatFactory(provider=flat_provider, default_method=cash)


@pytest.fixture
def upload(django_capture_on_commit_callbacks, mailbox):
    """Upload a file as `user` acting in `role` and post its rows (tasks run eagerly once it commits)."""

    def uploaded(content: bytes, *, user, role=Role.SUPER_CREATOR, file_format, chunk_size: int = 500):
        with django_capture_on_commit_callbacks(execute=True):
            payment_file = services.payment_file_upload(
                file_format=file_format,
                name="bank.csv",
                content=content,
                uploaded_by=user,
                role=role,
                chunk_size=chunk_size,
            )
            dispatch_payment_file(payment_file)
        payment_file.refresh_from_db()
        return payment_file

    return uploaded


def outcomes(payment_file) -> list[tuple]:
    return list(
        PaymentFileRow.objects.filter(file=payment_file)
        .order_by("line")
        .values_list("line", "outcome", "reason")
    )


def test_each_row_is_posted_on_its_bill_dated_its_day_with_a_receipt(upload, bank, bills, super_creator):
    january, february = bills
    content = bank_csv(
        (january.number, "", "4,000.00", "2024-02-05", "ibft", "TX-1"),
        ("", january.connection.number, "5750", "2024-03-06", "", "TX-2"),
        ("", january.connection.number, "10", "2024-01-30", "", "TX-3"),
    )

    payment_file = upload(content, user=super_creator, file_format=bank)

    first, second = Payment.objects.order_by("pk")
    assert (first.invoice_id, first.amount, first.method.code, first.reference) == (
        january.pk,
        Decimal("4000.00"),
        "ibft",
        "TX-1",
    )
    assert first.received_at == datetime(2024, 2, 5, tzinfo=ZONE)
    # By connection: its latest bill issued by the row's day, which settles the oldest open one first.
    assert (second.invoice_id, second.method.code, second.received_at) == (
        february.pk,
        "bank-counter",
        datetime(2024, 3, 6, tzinfo=ZONE),
    )
    assert [(a.invoice_id, a.amount) for a in second.allocations.all()] == [(january.pk, Decimal("5750.00"))]
    assert (first.receipt_number, second.receipt_number) == (
        f"{bank.provider.code}-PAY-2024-000001",
        f"{bank.provider.code}-PAY-2024-000002",
    )
    assert list(payment_file.rows.order_by("line").values_list("line", "outcome", "payment_id")) == [
        (2, RowOutcome.POSTED, first.pk),
        (3, RowOutcome.POSTED, second.pk),
        (4, RowOutcome.REFUSED, None),
    ]
    assert payment_file.rows.get(line=4).reason == (
        f"Paid on 2024-01-30, before connection {january.connection.number}'s first bill was issued (2024-01-31)."
    )
    assert (payment_file.status, payment_file.total, payment_file.done) == (PaymentFileStatus.COMPLETED, 3, 3)
    assert (payment_file.posted, payment_file.duplicates, payment_file.refused) == (2, 0, 1)
    assert payment_file.posted_amount == Decimal("9750.00")
    assert Invoice.objects.get(pk=january.pk).status == "Paid"
    assert_ledger_holds(january.connection)


def test_a_reference_posted_before_is_a_duplicate_in_the_same_file_in_another_and_after_the_api(
    upload, bank, bills, super_creator, cash
):
    january = bills[0]
    by_hand, _ = services.payment_post(
        invoice=january, amount=Decimal("100.00"), method=cash, received_by=super_creator, reference="TX-API"
    )
    first = upload(
        bank_csv(
            (january.number, "", "200.00", "2024-02-05", "", "TX-1"),
            (january.number, "", "200.00", "2024-02-05", "", "TX-1"),
            (january.number, "", "100.00", "2024-02-05", "", "TX-API"),
        ),
        user=super_creator,
        file_format=bank,
    )
    posted = Payment.objects.get(reference="TX-1")

    again = upload(
        bank_csv((january.number, "", "200.00", "2024-02-05", "", "TX-1")),
        user=super_creator,
        file_format=bank,
    )

    assert outcomes(first) == [
        (2, RowOutcome.POSTED, ""),
        (3, RowOutcome.DUPLICATE, f"Reference TX-1 was posted already, as receipt {posted.receipt_number}."),
        (
            4,
            RowOutcome.DUPLICATE,
            f"Reference TX-API was posted already, as receipt {by_hand.receipt_number}.",
        ),
    ]
    assert list(first.rows.exclude(outcome=RowOutcome.POSTED).values_list("payment_id", flat=True)) == [
        posted.pk,
        by_hand.pk,
    ]
    assert outcomes(again) == [
        (2, RowOutcome.DUPLICATE, f"Reference TX-1 was posted already, as receipt {posted.receipt_number}.")
    ]
    assert (first.posted, first.duplicates, again.duplicates) == (1, 2, 1)
    assert Payment.objects.filter(reference="TX-1").count() == 1
    assert Invoice.objects.get(pk=january.pk).amount_paid == Decimal("300.00")


def test_a_files_payments_are_audited_e_mailed_and_credited_as_a_clerks_are(
    upload, flat_provider, bank, bills, super_creator
):
    provider_update(provider=flat_provider, allow_overpayment=True)
    january, february = bills
    customer = january.customer
    assert customer.email and customer.notify_payments
    content = bank_csv(
        (january.number, "", "100.00", "2024-02-05", "", "E-1"),
        (january.number, "", "200.00", "2024-02-05", "", "E-2"),
        (february.number, "", "20000.00", "2024-03-05", "", "E-3"),  # 19,200.00 owed: 800.00 over
    )

    payment_file = upload(content, user=super_creator, file_format=bank)

    assert (payment_file.posted, payment_file.refused) == (3, 0)
    payments = list(Payment.objects.order_by("pk"))
    assert [(payment.payable_before, payment.payable_after) for payment in payments] == [
        (Decimal("9750.00"), Decimal("9650.00")),
        (Decimal("9650.00"), Decimal("9450.00")),
        (Decimal("19200.00"), Decimal("0.00")),
    ]
    assert credit_balance_of(customer) == Decimal("800.00")
    # Each payment's own record of the bill it settled: the balance before and after it, in turn.
    balances = [
        (old["balance"], new["balance"])
        for old, new in AuditLog.objects.filter(
            object_type="invoicing.invoice", object_id=str(january.pk), action="update"
        )
        .order_by("pk")
        .values_list("old_values", "new_values")
    ]
    assert balances == [("9750.00", "9650.00"), ("9650.00", "9450.00"), ("9450.00", "0.00")]
    created = AuditLog.objects.filter(action="create", actor_id=super_creator.pk)
    assert sorted(
        created.filter(object_type="invoicing.payment").values_list("object_id", flat=True)
    ) == sorted(str(payment.pk) for payment in payments)
    assert created.filter(object_type="invoicing.paymentallocation").count() == 4
    assert created.filter(object_type="invoicing.creditentry").count() == 1
    receipts = Message.objects.filter(kind=MessageKind.PAYMENT_RECEIVED, about_type="invoicing.payment")
    assert sorted(receipts.values_list("about_id", flat=True)) == [payment.pk for payment in payments]
    assert audit_verify(chain=flat_provider.pk) == []
    assert_ledger_holds(january.connection)


def test_the_database_refuses_a_reference_twice_for_a_provider_but_not_across_providers(
    bills, super_creator, cash
):
    january = bills[0]
    services.payment_post(
        invoice=january, amount=Decimal("1.00"), method=cash, received_by=super_creator, reference="TX-9"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(
            provider=january.provider,
            connection=january.connection,
            invoice=january,
            receipt_number="HAND-1",
            amount=Decimal("1.00"),
            method=cash,
            reference="TX-9",
            payable_before=Decimal("1.00"),
            payable_after=Decimal("0.00"),
            received_by=super_creator,
        )

    other = UserFactory(roles=[Role.SUPER_CREATOR])
    FlatTariffFactory(provider=other.provider)
    elsewhere = services.invoice_issue(
        connection=billable_connection(other.provider), period=date(2024, 1, 1), created_by=other
    )
    payment, new = services.payment_post(
        invoice=elsewhere, amount=Decimal("1.00"), method=cash, received_by=other, reference="TX-9"
    )
    assert new and payment.reference == "TX-9"


def test_a_repeated_reference_through_the_service_is_a_conflict_naming_the_receipt(
    bills, super_creator, cash
):
    january = bills[0]
    first, _ = services.payment_post(
        invoice=january, amount=Decimal("1.00"), method=cash, received_by=super_creator, reference="TX-5"
    )

    with pytest.raises(services.DuplicateReference) as refused:
        services.payment_post(
            invoice=january, amount=Decimal("2.00"), method=cash, received_by=super_creator, reference="TX-5"
        )

    assert refused.value.extra["receiptNumber"] == first.receipt_number
    assert refused.value.status == 409
    assert Payment.objects.count() == 1


def test_every_refusal_is_kept_with_its_reason_and_posts_nothing(upload, bank, bills, super_creator, cash):
    january, february = bills
    february_connection = february.connection.number
    other = UserFactory(roles=[Role.SUPER_CREATOR])
    FlatTariffFactory(provider=other.provider)
    foreign = services.invoice_issue(
        connection=billable_connection(other.provider), period=date(2024, 1, 1), created_by=other
    )
    cancelled = services.invoice_issue(
        connection=billable_connection(bank.provider), period=date(2024, 1, 1), created_by=super_creator
    )
    services.invoice_update(invoice=cancelled, cancel=True, updated_by=super_creator)
    PaymentMethod.objects.filter(code="card").update(is_active=False)
    content = bank_csv(
        ("NO-SUCH-BILL", "", "10.00", "2024-02-05", "", "R-1"),
        (foreign.number, "", "10.00", "2024-02-05", "", "R-2"),
        ("", foreign.connection.number, "10.00", "2024-02-05", "", "R-3"),
        (january.number, "", "19500.01", "2024-02-05", "", "R-4"),
        (january.number, "OTHER-CONN", "10.00", "2024-02-05", "", "R-5"),
        (january.number, "", "10.00", "2024-01-15", "", "R-6"),
        (cancelled.number, "", "10.00", "2024-02-05", "", "R-7"),
        (january.number, "", "10.00", "2024-02-05", "card", "R-8"),
        (january.number, "", "ten", "2024-02-05", "", "R-9"),
        (january.number, "", "1234,5", "2024-02-05", "", "R-10"),
        (january.number, "", "0.00", "2024-02-05", "", "R-11"),
        (january.number, "", "10.00", "05/02/2024", "", "R-12"),
        (january.number, "", "10.00", "2024-02-05", "cheque", "R-13"),
        (january.number, "", "10.00", "2024-02-05", "", ""),
        ("", "", "10.00", "2024-02-05", "", "R-15"),
        (january.number, "", "", "2024-02-05", "", "R-16"),
        (january.number, "", "10.00", "2024-02-05", "", "R" * 101),
    )

    payment_file = upload(content, user=super_creator, file_format=bank)

    january_payable = Decimal("9750.00")
    assert outcomes(payment_file) == [
        (2, "refused", "No bill NO-SUCH-BILL among the bills you may take payments on."),
        (3, "refused", f"No bill {foreign.number} among the bills you may take payments on."),
        (4, "refused", f"No bill of connection {foreign.connection.number} among the bills you may take payments on."),
        (5, "refused", f"19500.01 is more than the {january_payable} payable on invoice {january.number}; "
                       f"take at most {january_payable}."),
        (6, "refused", f"Bill {january.number} is of connection {february_connection}, not OTHER-CONN."),
        (7, "refused", f"Paid on 2024-01-15, before bill {january.number} was issued (2024-01-31)."),
        (8, "refused", f"Invoice {cancelled.number} is cancelled; it takes no payments."),
        (9, "refused", "Credit/Debit Card is no longer accepted; choose another payment method."),
        (10, "refused", "Amount 'ten' is not an amount like 1,234.50."),
        (11, "refused", "Amount '1234,5' is not an amount like 1,234.50."),
        (12, "refused", "Amount '0.00' must be more than zero."),
        (13, "refused", "Date '05/02/2024' is not a date like 2024-07-31."),
        (14, "refused", "No payment method 'cheque'; use one of: bank-counter, card, easypaisa, ibft, jazzcash."),
        (15, "refused", "The row has no bank reference: without one it could be posted twice."),
        (16, "refused", "The row names no bill number and no connection number."),
        (17, "refused", "The row has no amount."),
        (18, "refused", "The bank reference is longer than 100 characters."),
    ]  # fmt: skip
    assert (payment_file.refused, payment_file.posted, payment_file.status) == (
        17,
        0,
        PaymentFileStatus.COMPLETED,
    )
    assert Payment.objects.count() == 0
    assert_ledger_holds(january.connection)


def test_a_paid_bill_and_a_date_in_the_future_are_refused(upload, bank, bills, super_creator):
    january = bills[0]
    content = bank_csv(
        (january.number, "", "9750.00", "2024-03-01", "", "A-1"),
        (january.number, "", "1.00", "2024-03-02", "", "A-2"),
        (bills[1].number, "", "1.00", "2024-03-20", "", "A-3"),
    )

    with time_machine.travel(datetime(2024, 3, 15, 12, 0, tzinfo=ZONE), tick=False):
        payment_file = upload(content, user=super_creator, file_format=bank)

    assert outcomes(payment_file) == [
        (2, RowOutcome.POSTED, ""),
        (3, RowOutcome.REFUSED, f"Invoice {january.number} is fully paid; nothing is owed on it."),
        (4, RowOutcome.REFUSED, "A payment cannot be dated in the future."),
    ]


def test_a_clerks_rows_post_only_on_the_bills_they_issued(upload, bank, bills, creator, super_creator):
    theirs = bills[0]
    not_theirs = services.invoice_issue(
        connection=billable_connection(bank.provider), period=date(2024, 1, 1), created_by=super_creator
    )
    content = bank_csv(
        (theirs.number, "", "100.00", "2024-02-05", "", "C-1"),
        (not_theirs.number, "", "100.00", "2024-02-05", "", "C-2"),
    )

    payment_file = upload(content, user=creator, role=Role.INVOICE_CREATOR, file_format=bank)

    assert outcomes(payment_file) == [
        (2, RowOutcome.POSTED, ""),
        (3, RowOutcome.REFUSED, f"No bill {not_theirs.number} among the bills you may take payments on."),
    ]
    assert Payment.objects.get().received_by == creator


def test_an_uploader_who_lost_the_role_before_the_rows_were_posted_posts_nothing(
    bank, bills, super_creator, django_capture_on_commit_callbacks
):
    payment_file = services.payment_file_upload(
        file_format=bank,
        name="bank.csv",
        content=bank_csv((bills[0].number, "", "100.00", "2024-02-05", "", "L-1")),
        uploaded_by=super_creator,
        role=Role.SUPER_CREATOR,
    )
    super_creator.roles.update(role=Role.AUDITOR)

    services.payment_file_chunk_post(file_id=payment_file.pk, first_line=2, last_line=2)

    assert outcomes(payment_file) == [
        (
            2,
            RowOutcome.REFUSED,
            f"Not posted: {super_creator.name} may no longer post payments as Super_Creator.",
        )
    ]
    assert Payment.objects.count() == 0


class WorkerKilled(BaseException):
    """The worker's process ends mid-chunk (nothing catches it, as nothing catches SIGKILL)."""


def test_a_chunk_taken_up_again_after_a_crash_posts_only_the_rows_not_posted(
    bank, bills, super_creator, monkeypatch
):
    january = bills[0]
    content = bank_csv(*[(january.number, "", "10.00", "2024-02-05", "", f"K-{n}") for n in range(1, 6)])
    payment_file = services.payment_file_upload(
        file_format=bank, name="bank.csv", content=content, uploaded_by=super_creator, role=Role.SUPER_CREATOR
    )
    # Two rows a transaction: the worker dies writing the second two.
    monkeypatch.setattr(payment_files_module, "ROWS_PER_TRANSACTION", 2)
    real_write, calls = payment_files_module.payments_write, []

    def dies_on_the_second(**values):
        calls.append([plan.reference for plan in values["plans"]])
        if len(calls) == 2:
            raise WorkerKilled
        return real_write(**values)

    monkeypatch.setattr(payment_files_module, "payments_write", dies_on_the_second)
    with pytest.raises(WorkerKilled):
        services.payment_file_chunk_post(file_id=payment_file.pk, first_line=2, last_line=6)
    assert calls == [["K-1", "K-2"], ["K-3", "K-4"]]
    assert [row[1] for row in outcomes(payment_file)] == ["posted", "posted", "pending", "pending", "pending"]
    monkeypatch.setattr(payment_files_module, "payments_write", real_write)

    assert services.payment_file_chunk_post(file_id=payment_file.pk, first_line=2, last_line=6) == 3
    assert services.payment_file_chunk_post(file_id=payment_file.pk, first_line=2, last_line=6) == 0

    payment_file.refresh_from_db()
    assert sorted(Payment.objects.values_list("reference", flat=True)) == [f"K-{n}" for n in range(1, 6)]
    assert (payment_file.status, payment_file.posted, payment_file.posted_amount) == (
        PaymentFileStatus.COMPLETED,
        5,
        Decimal("50.00"),
    )
    assert Invoice.objects.get(pk=january.pk).amount_paid == Decimal("50.00")


def test_rows_are_posted_chunk_by_chunk_and_the_file_completes_with_the_last(
    upload, bank, bills, super_creator
):
    january = bills[0]
    content = bank_csv(*[(january.number, "", "1.00", "2024-02-05", "", f"N-{n}") for n in range(7)])

    payment_file = upload(content, user=super_creator, file_format=bank, chunk_size=3)

    assert (payment_file.status, payment_file.posted, payment_file.done) == (
        PaymentFileStatus.COMPLETED,
        7,
        7,
    )
    assert services.payment_file_chunks(payment_file) == []


def test_a_file_of_semicolons_decimal_commas_and_day_first_dates_is_read_as_its_format_says(
    upload, flat_provider, bills, super_creator
):
    bank = PaymentFileFormatFactory(
        provider=flat_provider,
        bill_number_column="Voucher",
        connection_number_column="",
        amount_column="Bedrag",
        date_column="Datum",
        method_column="",
        reference_column="Ref",
        date_format="%d/%m/%Y",
        decimal_comma=True,
        delimiter=";",
    )
    content = bank_csv(
        (bills[0].number, "1.234,50", "05/02/2024", "E-1"),
        header=(" voucher ", "BEDRAG", "Datum", "Ref"),
        delimiter=";",
    )

    payment_file = upload(content, user=super_creator, file_format=bank)

    payment = Payment.objects.get()
    assert outcomes(payment_file) == [(2, RowOutcome.POSTED, "")]
    assert (payment.amount, payment.received_at, payment.method.code) == (
        Decimal("1234.50"),
        datetime(2024, 2, 5, tzinfo=ZONE),
        "bank-counter",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty: it needs a header line, then its rows."),
        (
            b"Bill No,Consumer No,Amount,Paid On,Channel,Txn Ref\r\n",
            "The file has no rows under its header line.",
        ),
        (b"Bill No,Amount\r\nX,1", "The file has no column 'Consumer No' (the connection number"),
        (
            b"Bill No,Consumer No,Amount,Paid On,Channel,Txn Ref\r\n\xff\xfe,1",
            "The file is not UTF-8 text (line 2)",
        ),
        (
            b"Bill No,Consumer No,Amount,Paid On,Channel,Txn Ref\r\nX\x00,1",
            "The file contains a NUL character.",
        ),
    ],
    ids=["empty", "no rows", "column missing", "not UTF-8", "NUL"],
)
def test_a_file_that_cannot_be_read_is_refused_whole(bank, super_creator, content, message):
    with pytest.raises(services.PaymentFileRefused) as refused:
        services.payment_file_upload(
            file_format=bank,
            name="bank.csv",
            content=content,
            uploaded_by=super_creator,
            role=Role.SUPER_CREATOR,
        )

    assert refused.value.detail.startswith(message)
    assert PaymentFileRow.objects.count() == 0


def test_a_file_over_the_size_limit_is_refused(bank, super_creator, monkeypatch):
    monkeypatch.setattr(payment_files_module, "MAX_FILE_BYTES", 100)

    with pytest.raises(services.PaymentFileTooLarge):
        services.payment_file_upload(
            file_format=bank,
            name="bank.csv",
            content=bank_csv(*[("B", "", "1.00", "2024-02-05", "", f"S-{n}") for n in range(10)]),
            uploaded_by=super_creator,
            role=Role.SUPER_CREATOR,
        )


def test_another_providers_format_is_refused(bank, super_creator):
    stranger = UserFactory(roles=[Role.SUPER_CREATOR])

    with pytest.raises(services.PaymentFileRefused):
        services.payment_file_upload(
            file_format=bank, name="x.csv", content=bank_csv(), uploaded_by=stranger, role=Role.SUPER_CREATOR
        )


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"bill_number_column": "", "connection_number_column": ""}, "bill_number_column"),
        ({"date_format": "YYYY-MM-DD"}, "date_format"),
        ({"date_format": "%Y-%m"}, "date_format"),
        ({"amount_column": "Txn Ref"}, "amount_column"),
    ],
    ids=["names no bill", "no strptime codes", "no day", "one column twice"],
)
def test_a_file_format_that_cannot_read_a_file_is_refused(flat_provider, values, field):
    defaults = {
        "name": "HBL",
        "bill_number_column": "Bill",
        "connection_number_column": "",
        "amount_column": "Amount",
        "date_column": "Date",
        "reference_column": "Txn Ref",
    }
    with pytest.raises(DomainError) as refused:
        services.payment_file_format_create(provider=flat_provider, **(defaults | values))

    assert refused.value.field == field


def test_a_file_still_since_the_grace_period_is_listed_for_the_reconciler(bank, bills, super_creator):
    with time_machine.travel(datetime(2024, 3, 1, 9, 0, tzinfo=ZONE), tick=False):
        payment_file = services.payment_file_upload(
            file_format=bank,
            name="bank.csv",
            content=bank_csv((bills[0].number, "", "1.00", "2024-02-05", "", "G-1")),
            uploaded_by=super_creator,
            role=Role.SUPER_CREATOR,
        )

    assert list(payment_files_stalled(still_since=datetime(2024, 3, 1, 9, 1, tzinfo=ZONE))) == [payment_file]
    assert list(payment_files_stalled(still_since=datetime(2024, 3, 1, 8, 59, tzinfo=ZONE))) == []
