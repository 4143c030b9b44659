"""Bank payment files: a bank's or collection agent's CSV of payments, each row decided as `payment_post`
decides a payment a clerk typed (its rules, its refusals, its audit records), its outcome kept.

The upload is read and checked whole first (size, encoding, the format's columns), and its rows are
stored in one transaction, each already refused where it cannot be read (no amount, a date not in the
format, no reference). The rows are then posted in chunks of lines by Celery tasks (eager in the
embedded default), a hundred rows a transaction: the rows are held, their connections and bills
locked in id order, each payment decided in turn in memory (a refused row changes nothing; the next
row on the same bill finds what the one before it left), then every payment, allocation, bill,
receipt number, audit record and row outcome written at once. A worker killed mid-chunk leaves every
row either posted with its outcome or still pending, so the chunk sent again (acks_late, or the
reconciler) posts only what is pending; a chunk delivered twice at once waits for the rows the other
delivery holds, then finds them done. The bank's reference is unique per provider in the database: a
reference another payment took meanwhile (the API, another file) fails the transaction's insert
whole, and the rows are posted again, that reference found posted.
"""

import csv
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Role
from billing.signals import rows_bulk_created
from config import context
from config.bulk import insert_objects, update_objects
from config.errors import DomainError
from config.parsers import NUL, NUL_MESSAGE
from invoicing.models import (
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentFile,
    PaymentFileFormat,
    PaymentFileRow,
    PaymentFileStatus,
    PaymentMethod,
    RowOutcome,
)
from invoicing.selectors import invoice_list_for
from invoicing.services.errors import PaymentFileRefused, PaymentFileTooLarge
from invoicing.services.locks import lock_for_payments, settled_by
from invoicing.services.payments import payment_planned, payments_write

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 16 * 2**20
MAX_ROWS = 100_000
DEFAULT_CHUNK_SIZE = 500
# Rows posted in one transaction: their connections stay locked until it commits, and the provider's
# receipt counter from their numbering (a clerk's payment meanwhile waits that long); a worker killed
# mid-chunk loses only the transaction it was in.
ROWS_PER_TRANSACTION = 100
CENT = Decimal("0.01")
COLLECT = "invoicing.collect_payment"
FIELD_NAMES = {
    "bill_number": "bill number",
    "connection_number": "connection number",
    "amount": "amount",
    "date": "date",
    "method": "payment method",
    "reference": "bank reference",
}
LIMITS = {"bill_number": 40, "connection_number": 40, "reference": 100}


# --- file formats (Django admin) ---------------------------------------------------------------


def _format_checked(file_format: PaymentFileFormat) -> None:
    if not (file_format.bill_number_column or file_format.connection_number_column):
        raise DomainError(
            _(
                "Name the column of the bill number, of the connection number, or both: a row must name "
                "what it pays."
            ),
            field="bill_number_column",
        )
    if "%" not in file_format.date_format:
        raise DomainError(_("Write the date format with strptime codes, e.g. %d/%m/%Y."), field="date_format")
    try:
        sample = date(2024, 7, 31).strftime(file_format.date_format)
        read = datetime.strptime(sample, file_format.date_format).date()  # noqa: DTZ007 (a calendar day)
    except ValueError as problem:
        raise DomainError(
            _("The date format cannot be read: %(problem)s.") % {"problem": problem}, field="date_format"
        ) from problem
    if read != date(2024, 7, 31):
        raise DomainError(
            _("The date format must give day, month and year (e.g. %d/%m/%Y)."), field="date_format"
        )
    headers = [_header(column) for column in file_format.columns.values()]
    if len(set(headers)) != len(headers):
        raise DomainError(_("Each field needs a column of its own."), field="amount_column")
    if file_format.default_method is not None and not file_format.default_method.is_active:
        raise DomainError(
            _("%(name)s is no longer accepted.") % {"name": file_format.default_method.name},
            field="default_method",
        )


@transaction.atomic
def payment_file_format_create(*, provider: Any, **values: Any) -> PaymentFileFormat:
    """A provider's layout of one bank's payment files (entered by an administrator in Django admin)."""
    file_format = PaymentFileFormat(provider=provider, **values)
    _format_checked(file_format)
    if PaymentFileFormat.objects.filter(provider=provider, name=file_format.name).exists():
        raise DomainError(
            _("%(provider)s has a file format named %(name)s already.")
            % {"provider": provider, "name": file_format.name},
            field="name",
        )
    file_format.save()
    return file_format


@transaction.atomic
def payment_file_format_update(*, file_format: PaymentFileFormat, **changes: Any) -> PaymentFileFormat:
    """Change a layout; the files read with it keep their rows as they were read."""
    file_format = PaymentFileFormat.objects.select_for_update().get(pk=file_format.pk)
    for name, value in changes.items():
        setattr(file_format, name, value)
    _format_checked(file_format)
    clash = PaymentFileFormat.objects.filter(provider_id=file_format.provider_id, name=file_format.name)
    if clash.exclude(pk=file_format.pk).exists():
        raise DomainError(
            _("Another file format is named %(name)s.") % {"name": file_format.name}, field="name"
        )
    file_format.save()
    return file_format


# --- reading an upload -------------------------------------------------------------------------


def _header(name: str) -> str:
    return " ".join(name.split()).casefold()


@dataclass
class ReadRow:
    line: int
    values: dict[str, str]


def read_rows(*, file_format: PaymentFileFormat, content: bytes) -> list[ReadRow]:
    """The rows of an upload, each as {field: text}; the whole file is refused when it cannot be read
    as the format says (too large, not UTF-8, a mapped column missing, no rows)."""
    if len(content) > MAX_FILE_BYTES:
        raise PaymentFileTooLarge(
            _(
                "The file is %(count)s MB; upload at most %(max_file_bytes)s MB at a time (split it into "
                "several files)."
            )
            % {"count": format(len(content) / 2**20, ".1f"), "max_file_bytes": MAX_FILE_BYTES // 2**20},
            field="file",
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        line = content[: problem.start].count(b"\n") + 1
        raise PaymentFileRefused(
            _("The file is not UTF-8 text (line %(line)s); save it as CSV UTF-8.") % {"line": line},
            field="file",
        ) from problem
    if NUL in text:
        raise PaymentFileRefused(
            _("The file contains a NUL character. %(nul_message)s") % {"nul_message": NUL_MESSAGE},
            field="file",
        )
    reader = csv.reader(text.splitlines(), delimiter=file_format.delimiter, strict=True)
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise PaymentFileRefused(
                _("The file is empty: it needs a header line, then its rows."), field="file"
            )
        positions: dict[str, int] = {}
        for index, name in enumerate(header):
            positions.setdefault(_header(name), index)
        where = {}
        for field, column in file_format.columns.items():
            if _header(column) not in positions:
                raise PaymentFileRefused(
                    _(
                        "The file has no column %(column)s (the %(field_names)s, as %(name)s's format says). Its "
                        "columns are: %(items)s."
                    )
                    % {
                        "column": repr(column),
                        "field_names": FIELD_NAMES[field],
                        "name": file_format.name,
                        "items": ", ".join(repr(name.strip()) for name in header),
                    },
                    field="file",
                    column=column,
                )
            where[field] = positions[_header(column)]
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) == MAX_ROWS:
                raise PaymentFileRefused(
                    _("Upload at most %(max_rows)s rows at a time.") % {"max_rows": format(MAX_ROWS, ",")},
                    field="file",
                )
            values = {
                field: cells[index].strip() if index < len(cells) else "" for field, index in where.items()
            }
            rows.append(ReadRow(line=reader.line_num, values=values))
    except csv.Error as problem:
        raise PaymentFileRefused(
            _("The file is not valid CSV at line %(line_num)s: %(problem)s.")
            % {"line_num": reader.line_num, "problem": problem},
            field="file",
        ) from problem
    if not rows:
        raise PaymentFileRefused(_("The file has no rows under its header line."), field="file")
    return rows


class RowProblem(ValueError):
    """A row that cannot be read: stored refused, with this reason."""


def parse_amount(text: str, *, decimal_comma: bool) -> Decimal:
    """An amount as a bank writes it: 1,234.50 or 1234.5 (or 1.234,50 with a decimal comma)."""
    thousands, point = (".", ",") if decimal_comma else (",", ".")
    # Thousands grouped by threes or not at all: 1234,5 in a file of decimal points is refused, not
    # read as 12345.
    t, p = re.escape(thousands), re.escape(point)
    if not re.fullmatch(rf"([0-9]{{1,3}}({t}[0-9]{{3}})+|[0-9]+)({p}[0-9]{{1,2}})?", text):
        example = "1.234,50" if decimal_comma else "1,234.50"
        raise RowProblem(
            _("Amount %(text)s is not an amount like %(example)s.") % {"text": repr(text), "example": example}
        )
    amount = Decimal(text.replace(thousands, "").replace(point, "."))
    if amount <= 0:
        raise RowProblem(_("Amount %(text)s must be more than zero.") % {"text": repr(text)})
    if amount >= Decimal("1e12"):
        raise RowProblem(_("Amount %(text)s is too large.") % {"text": repr(text)})
    return amount.quantize(CENT)


def _row(read: ReadRow, file_format: PaymentFileFormat, methods: dict[str, PaymentMethod]) -> PaymentFileRow:
    values = read.values
    row = PaymentFileRow(
        line=read.line,
        **{field: values.get(field, "")[:limit] for field, limit in LIMITS.items()},
    )
    try:
        for field, limit in LIMITS.items():
            if len(values.get(field, "")) > limit:
                raise RowProblem(
                    _("The %(field_names)s is longer than %(limit)s characters.")
                    % {"field_names": FIELD_NAMES[field], "limit": limit}
                )
        if not (row.bill_number or row.connection_number):
            raise RowProblem(_("The row names no bill number and no connection number."))
        if not row.reference:
            raise RowProblem(_("The row has no bank reference: without one it could be posted twice."))
        if not values["amount"]:
            raise RowProblem(_("The row has no amount."))
        row.amount = parse_amount(values["amount"], decimal_comma=file_format.decimal_comma)
        try:
            row.paid_on = datetime.strptime(values["date"], file_format.date_format).date()  # noqa: DTZ007
        except ValueError as problem:
            example = date(2024, 7, 31).strftime(file_format.date_format)
            raise RowProblem(
                _("Date %(date)s is not a date like %(example)s.")
                % {"date": repr(values["date"]), "example": example}
            ) from problem
        row.method = _method(values.get("method", ""), file_format, methods)
    except RowProblem as problem:
        row.outcome, row.reason = RowOutcome.REFUSED, str(problem)
    return row


def _method(text: str, file_format: PaymentFileFormat, methods: dict[str, PaymentMethod]) -> PaymentMethod:
    if not text:
        if file_format.default_method is None:
            raise RowProblem(_("The row names no payment method, and the file's format has no default."))
        return file_format.default_method
    method = methods.get(text.casefold())
    if method is None:
        codes = ", ".join(sorted({method.code for method in methods.values()}))
        raise RowProblem(
            _("No payment method %(text)s; use one of: %(codes)s.") % {"text": repr(text), "codes": codes}
        )
    return method


# --- the upload ----------------------------------------------------------------------------------


@transaction.atomic
def payment_file_upload(
    *,
    file_format: PaymentFileFormat,
    name: str,
    content: bytes,
    uploaded_by: User,
    role: str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> PaymentFile:
    """Store a bank's payment file and its rows, to be posted by `payment_file_chunk_post` (the caller
    sends its chunks once this commits: `invoicing.tasks.dispatch_payment_file`)."""
    if uploaded_by.provider_id is None or uploaded_by.provider_id != file_format.provider_id:
        raise PaymentFileRefused(_("Sign in as a user of the provider whose payments the file holds."))
    if not file_format.is_active:
        raise PaymentFileRefused(
            _("The file format %(name)s is retired.") % {"name": file_format.name}, field="format"
        )
    read = read_rows(file_format=file_format, content=content)
    # A method by its code or its name, as banks write either.
    methods = {}
    for method in PaymentMethod.objects.all():
        methods.setdefault(method.name.casefold(), method)
        methods[method.code.casefold()] = method
    rows = [_row(one, file_format, methods) for one in read]
    payment_file = PaymentFile.objects.create(
        provider_id=file_format.provider_id,
        file_format=file_format,
        name=(name or "payments.csv")[:255],
        sha256=hashlib.sha256(content).hexdigest(),
        uploaded_by=uploaded_by,
        uploaded_role=Role(role),
        chunk_size=chunk_size,
        total=len(rows),
    )
    for row in rows:
        row.file = payment_file
    insert_objects(PaymentFileRow, rows)
    rows_bulk_created.send(sender=PaymentFileRow, rows=rows)
    _progress(payment_file.pk)
    payment_file.refresh_from_db()
    return payment_file


def payment_file_chunks(payment_file: PaymentFile) -> list[tuple[int, int]]:
    """The (first, last) lines of each chunk of the file's rows still pending."""
    lines = list(
        payment_file.rows.filter(outcome=RowOutcome.PENDING).order_by("line").values_list("line", flat=True)
    )
    size = payment_file.chunk_size
    return [(part[0], part[-1]) for part in (lines[at : at + size] for at in range(0, len(lines), size))]


def payment_file_dispatched(*, file_id: int) -> None:
    """Note that a file's pending chunks were just handed to the broker (bookkeeping for the reconciler)."""
    PaymentFile.objects.filter(pk=file_id).update(dispatched_at=timezone.now())


# --- posting -------------------------------------------------------------------------------------


def received_at(paid_on: date) -> datetime:
    """A row's day as the moment of its payment: the day's start, where the provider keeps time."""
    return timezone.make_aware(datetime.combine(paid_on, time.min))


def payment_file_chunk_post(*, file_id: int, first_line: int, last_line: int) -> int:
    """Post the pending rows of the file's lines `first_line` to `last_line`; returns how many were
    looked at (0: done already, by this chunk sent before or by another worker)."""
    payment_file = PaymentFile.objects.select_related("uploaded_by", "provider").get(pk=file_id)
    rows = list(
        payment_file.rows.filter(
            line__gte=first_line, line__lte=last_line, outcome=RowOutcome.PENDING
        ).order_by("line")
    )
    if not rows:
        _progress(file_id)
        return 0
    methods = PaymentMethod.objects.in_bulk()  # a few, each shared by many rows
    for row in rows:
        row.method = methods[row.method_id]
    user = payment_file.uploaded_by
    user.active_role = payment_file.uploaded_role
    token = context.bind(
        actor_id=user.pk, role=payment_file.uploaded_role, provider_id=payment_file.provider_id
    )
    try:
        # Read once for the chunk, in the uploader's reach: the bills they may take payments on (another
        # provider's, or for a clerk another clerk's, are not found); locked and read again to be paid.
        allowed = user.is_active and payment_file.uploaded_role in user.role_names
        bills = _bills(user, rows) if allowed else None
        for at in range(0, len(rows), ROWS_PER_TRANSACTION):
            _post_rows(payment_file, user, bills, rows[at : at + ROWS_PER_TRANSACTION])
    finally:
        context.reset(token)
    _progress(file_id)
    logger.info("payment file %s lines %s-%s: %s rows", file_id, first_line, last_line, len(rows))
    return len(rows)


def _refusal(
    row: PaymentFileRow, reason: str, *, outcome: str = RowOutcome.REFUSED, payment_id: int | None = None
) -> PaymentFileRow:
    row.outcome, row.reason, row.payment_id = outcome, reason[:500], payment_id
    return row


def _post_rows(
    payment_file: PaymentFile, user: User, bills: "_Bills | None", rows: list[PaymentFileRow]
) -> None:
    """Post rows of a chunk together (`bills`: those the uploader may take payments on; None: they may
    take none any more); a reference another payment took meanwhile (the database's constraint refused
    the rows' payments whole) is found by the rows read again."""
    try:
        _post_together(payment_file, user, bills, rows)
    except IntegrityError:
        _post_together(payment_file, user, bills, rows)


@transaction.atomic
def _post_together(
    payment_file: PaymentFile, user: User, bills: "_Bills | None", rows: list[PaymentFileRow]
) -> None:
    """Post rows in one transaction, each with its outcome: each payment decided in turn under the locks
    of all of them (a refused row changes nothing), then all written at once."""
    # The rows still pending, held until this commits: the same chunk sent twice waits here for the
    # other delivery, then finds them done.
    held = set(
        PaymentFileRow.objects.select_for_update()
        .filter(pk__in=[row.pk for row in rows], outcome=RowOutcome.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    rows = [row for row in rows if row.pk in held]
    if not rows:
        return
    for row in rows:  # as read (a first try that lost its reference rolled back)
        row.outcome, row.reason, row.payment_id = RowOutcome.PENDING, "", None
    if bills is None:
        reason = f"Not posted: {user.name} may no longer post payments as {user.active_role}."
        _outcomes_write([_refusal(row, reason) for row in rows])
        return
    found: dict[int, Invoice | str] = {}  # each row's bill, or why it has none
    for row in rows:
        try:
            found[row.pk] = _bill_of(row, bills)
        except DomainError as refusal:
            found[row.pk] = refusal.detail
    locked, of_connection = lock_for_payments([bill for bill in found.values() if isinstance(bill, Invoice)])
    # Read under the locks: a reference posted by a payment that held one of them is seen.
    posted = {
        reference: (pk, receipt)
        for reference, pk, receipt in Payment.objects.filter(
            provider_id=payment_file.provider_id, reference__in={row.reference for row in rows}
        ).values_list("reference", "pk", "receipt_number")
    }
    plans, posting = [], {}
    for row in rows:
        if row.reference in posted:
            pk, receipt = posted[row.reference]
            _refusal(
                row,
                _("Reference %(reference)s was posted already, as receipt %(receipt)s.")
                % {"reference": row.reference, "receipt": receipt},
                outcome=RowOutcome.DUPLICATE,
                payment_id=pk,
            )
            continue
        if row.reference in posting:  # twice among these rows: the first is posted below
            continue
        if isinstance(found[row.pk], str):
            _refusal(row, found[row.pk])
            continue
        bill = locked[found[row.pk].pk]
        try:
            plans.append(
                payment_planned(
                    invoice=bill,
                    settle=settled_by(bill, of_connection[bill.connection_id]),
                    amount=row.amount,
                    method=row.method,
                    reference=row.reference,
                    received_at=received_at(row.paid_on),
                )
            )
        except DomainError as refusal:
            _refusal(row, refusal.detail)
        else:
            posting[row.reference] = row
    payments = payments_write(plans=plans, received_by=user)
    by_reference = {payment.reference: payment for payment in payments}
    for row in rows:
        if row.outcome != RowOutcome.PENDING:
            continue
        payment = by_reference[row.reference]  # its own, or the one of the row before it posting it
        if posting[row.reference] is row:
            row.outcome, row.reason, row.payment_id = RowOutcome.POSTED, "", payment.pk
        else:
            _refusal(
                row,
                _("Reference %(reference)s was posted already, as receipt %(receipt_number)s.")
                % {"reference": row.reference, "receipt_number": payment.receipt_number},
                outcome=RowOutcome.DUPLICATE,
                payment_id=payment.pk,
            )
    _outcomes_write(rows)


def _outcomes_write(rows: list[PaymentFileRow]) -> None:
    update_objects(PaymentFileRow, rows, ["outcome", "reason", "payment"])


@dataclass
class _Bills:
    by_number: dict[str, Invoice]
    of_connection: dict[str, list[Invoice]]  # newest first


def _bills(user: User, rows: list[PaymentFileRow]) -> _Bills:
    bills = invoice_list_for(user=user, perm=COLLECT).defer(*Invoice.DOCUMENTS)
    numbers = {row.bill_number for row in rows if row.bill_number}
    connections = {row.connection_number for row in rows if row.connection_number and not row.bill_number}
    by_number = {bill.number: bill for bill in bills.filter(number__in=numbers)} if numbers else {}
    of_connection: dict[str, list[Invoice]] = {}
    if connections:
        for bill in (
            bills.filter(connection__number__in=connections)
            .exclude(status=InvoiceStatus.CANCELLED)
            .order_by("connection_id", "-period", "-pk")
        ):
            of_connection.setdefault(bill.connection.number, []).append(bill)
    return _Bills(by_number, of_connection)


def _bill_of(row: PaymentFileRow, bills: _Bills) -> Invoice:
    """The bill a row pays: the one it numbers, else its connection's latest issued by the row's day
    (which settles the connection's open bills oldest first, as a payment at the counter does)."""
    if row.bill_number:
        bill = bills.by_number.get(row.bill_number)
        if bill is None:
            raise DomainError(
                _("No bill %(bill_number)s among the bills you may take payments on.")
                % {"bill_number": row.bill_number}
            )
        if row.connection_number and bill.connection.number != row.connection_number:
            raise DomainError(
                _("Bill %(bill_number)s is of connection %(number)s, not %(connection_number)s.")
                % {
                    "bill_number": row.bill_number,
                    "number": bill.connection.number,
                    "connection_number": row.connection_number,
                }
            )
    else:
        issued = bills.of_connection.get(row.connection_number)
        if not issued:
            raise DomainError(
                _("No bill of connection %(connection_number)s among the bills you may take payments on.")
                % {"connection_number": row.connection_number}
            )
        bill = next((bill for bill in issued if bill.issue_date <= row.paid_on), None)
        if bill is None:
            raise DomainError(
                _(
                    "Paid on %(paid_on)s, before connection %(connection_number)s's first bill was issued "
                    "(%(issue_date)s)."
                )
                % {
                    "paid_on": format(row.paid_on, "%Y-%m-%d"),
                    "connection_number": row.connection_number,
                    "issue_date": format(issued[-1].issue_date, "%Y-%m-%d"),
                }
            )
    if row.paid_on < bill.issue_date:
        raise DomainError(
            _("Paid on %(paid_on)s, before bill %(number)s was issued (%(issue_date)s).")
            % {
                "paid_on": format(row.paid_on, "%Y-%m-%d"),
                "number": bill.number,
                "issue_date": format(bill.issue_date, "%Y-%m-%d"),
            }
        )
    return bill


@transaction.atomic
def _progress(file_id: int) -> None:
    """Count the file's rows by outcome (under its lock, so two chunks finishing at once count in turn);
    with none pending, the file is complete."""
    PaymentFile.objects.select_for_update().filter(pk=file_id).values_list("pk").get()
    counts = {
        row["outcome"]: row
        for row in PaymentFileRow.objects.filter(file_id=file_id)
        .values("outcome")
        .annotate(rows=Count("pk"), amount=Sum("amount", filter=Q(outcome=RowOutcome.POSTED)))
    }

    def count(outcome: str) -> int:
        return counts.get(outcome, {}).get("rows", 0)

    figures = {
        "progressed_at": timezone.now(),
        "done": sum(row["rows"] for key, row in counts.items() if key != RowOutcome.PENDING),
        "posted": count(RowOutcome.POSTED),
        "duplicates": count(RowOutcome.DUPLICATE),
        "refused": count(RowOutcome.REFUSED),
        "posted_amount": counts.get(RowOutcome.POSTED, {}).get("amount") or Decimal("0.00"),
    }
    if not count(RowOutcome.PENDING):
        figures |= {"status": PaymentFileStatus.COMPLETED, "finished_at": timezone.now()}
    # Progress counters, as a billing run's: bookkeeping, not a change the audit trail records.
    PaymentFile.objects.filter(pk=file_id).exclude(status=PaymentFileStatus.COMPLETED).update(**figures)
