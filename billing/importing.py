"""Onboarding customers and connections in bulk, through the same services as every other write.

One row is one connection with its customer's details, or a customer alone (its connection columns
empty). The same rows come as a CSV file, a JSON list of objects with these keys, or, for a whole
provider, a disco_sample.json-shaped file (customers, connections, divisions and meter readings).

Columns (only `name`, for a new customer, and `connection_type`, for a new connection, are required):

    customer_id         the customer's number as printed; empty: the next of the provider's series
                        (then the row's customer is a new one: give the number to add a second
                        connection to the same customer)
    name, national_id (CNIC, 12345-1234567-1), email, phone, address, organisation
    kind                Residential, Commercial, Industrial or Public (default Residential)
    preferred_language  en or ur (default en)
    notify_bills, notify_reminders, notify_payments     yes or no (default yes)
    connection_id       the connection's number as printed; empty: the next of the provider's series
    connection_type     the provider's connection type code; empty: no connection on this row
    meter_number, meter_type, division, subdivision
    installation_date   YYYY-MM-DD
    status              Pending (default: connected later with its first reading) or Active (loaded
                        with its history, whose readings are uploaded next)
    monthly_income, income_declared_on   a declared monthly income and the day it was declared

Each row is written whole or not at all, in a transaction of its own: good rows are kept, and each
row's result is reported (created, unchanged, or refused with the reason). The importer only adds:
a customer or connection already stored is `unchanged` when the row agrees with it, and refused,
saying what differs, when it does not (changes are made on its page or through the API). So a file
whose rows carry their numbers can be loaded again safely.
"""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User, normalize_email
from billing.models import (
    ConnectionStatus,
    Customer,
    CustomerKind,
    Language,
    ReadingSource,
    ServiceConnection,
)
from billing.services import (
    UploadReport,
    connection_create,
    connection_income_declare,
    customer_create,
    customer_values_clean,
    readings_upload,
)
from config.errors import DomainError
from config.parsers import NUL, NUL_MESSAGE
from providers.models import ConnectionType, Provider

CUSTOMER_COLUMNS = (
    "customer_id", "name", "national_id", "email", "phone", "address", "kind", "organisation",
    "preferred_language", "notify_bills", "notify_reminders", "notify_payments",
)  # fmt: skip
CONNECTION_COLUMNS = (
    "connection_id", "connection_type", "meter_number", "meter_type", "division", "subdivision",
    "installation_date", "status", "monthly_income", "income_declared_on",
)  # fmt: skip
COLUMNS = (*CUSTOMER_COLUMNS, *CONNECTION_COLUMNS)

# The kinds as written in files: the product's names, and the sample's "Industry".
KINDS = {kind.value.lower(): kind.value for kind in CustomerKind} | {"industry": CustomerKind.INDUSTRIAL}
LANGUAGES = {code: code for code in Language.values} | {
    label.split(" ")[-1].strip("()").lower(): code for code, label in Language.choices
}
YES, NO = {"1", "true", "yes", "y"}, {"0", "false", "no", "n"}
NEW_STATUSES = {ConnectionStatus.PENDING.lower(): ConnectionStatus.PENDING, "active": ConnectionStatus.ACTIVE}
CUSTOMER_DETAILS = CUSTOMER_COLUMNS[1:]  # the columns compared with a stored customer
CONNECTION_DETAILS = ("meter_number", "meter_type", "division", "subdivision", "installation_date", "status")


class RowResult:
    CREATED = "created"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


@dataclass
class ImportedRow:
    row: int
    customer_id: str
    connection_id: str
    result: str
    reason: str = ""
    customer_created: bool = False
    connection_created: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "customerId": self.customer_id,
            "connectionId": self.connection_id,
            "result": self.result,
            "reason": self.reason,
        }


@dataclass
class ImportReport:
    rows: list[ImportedRow] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(1 for row in self.rows if row.result == result)

    @property
    def customers_created(self) -> int:
        return sum(row.customer_created for row in self.rows)

    @property
    def connections_created(self) -> int:
        return sum(row.connection_created for row in self.rows)

    @property
    def refused(self) -> list[ImportedRow]:
        return [row for row in self.rows if row.result == RowResult.REFUSED]

    def as_json(self) -> dict[str, Any]:
        return {
            "created": self.count(RowResult.CREATED),
            "unchanged": self.count(RowResult.UNCHANGED),
            "refused": self.count(RowResult.REFUSED),
            "customersCreated": self.customers_created,
            "connectionsCreated": self.connections_created,
            "rows": [row.as_json() for row in self.rows],
        }


MAX_UPLOAD_BYTES = 10 * 2**20


def csv_file_rows(upload: Any, *, max_rows: int) -> list[dict[str, Any]]:
    """The rows of an uploaded CSV file (UTF-8, a header line), refused whole when it cannot be read."""
    if upload.size > MAX_UPLOAD_BYTES:
        raise DomainError(
            _("Upload at most %(megabytes)s MB at a time.") % {"megabytes": MAX_UPLOAD_BYTES // 2**20},
            field="file",
        )
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DomainError(_("The file is not UTF-8 text; save it as CSV UTF-8."), field="file") from exc
    if NUL in text:
        raise DomainError(
            _("The file contains a NUL character. %(rule)s") % {"rule": NUL_MESSAGE}, field="file"
        )
    try:
        rows = csv_rows(text)
    except csv.Error as exc:
        raise DomainError(
            _("The file is not valid CSV: %(problem)s.") % {"problem": exc}, field="file"
        ) from exc
    if not rows:
        raise DomainError(_("The file has no rows under its header line."), field="file")
    if len(rows) > max_rows:
        raise DomainError(
            _("Upload at most %(count)s rows at a time.") % {"count": f"{max_rows:,}"}, field="file"
        )
    return rows


class RowProblem(ValueError):
    """A row that cannot be read: refused with this reason."""


def csv_rows(text: str) -> list[dict[str, Any]]:
    """The rows of a CSV text with a header line; the header's names are matched loosely."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames:
        reader.fieldnames = [name.strip().lower().replace(" ", "_") for name in reader.fieldnames]
    return list(reader)


def _text(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if isinstance(value, dict | list):
        raise RowProblem(_("Column %(name)s: give a single value.") % {"name": name})
    return "" if value is None else str(value).strip()


def _flag(row: dict[str, Any], name: str) -> bool | None:
    raw = _text(row, name).lower()
    if not raw:
        return None
    if raw in YES | NO:
        return raw in YES
    raise RowProblem(_("Column %(name)s: %(value)s is not yes or no.") % {"name": name, "value": repr(raw)})


def _choice(row: dict[str, Any], name: str, choices: dict[str, str]) -> str | None:
    raw = _text(row, name)
    if not raw:
        return None
    if raw.lower() not in choices:
        raise RowProblem(
            _("Column %(name)s: %(value)s is not one of %(choices)s.")
            % {"name": name, "value": repr(raw), "choices": ", ".join(sorted(set(choices.values())))}
        )
    return choices[raw.lower()]


def _date(row: dict[str, Any], name: str) -> date | None:
    raw = _text(row, name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise RowProblem(
            _("Column %(name)s: %(value)s is not a date like 2024-07-31.")
            % {"name": name, "value": repr(raw)}
        ) from exc


def _amount(row: dict[str, Any], name: str) -> Decimal | None:
    raw = _text(row, name)
    if not raw:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation as exc:
        raise RowProblem(
            _("Column %(name)s: %(value)s is not an amount.") % {"name": name, "value": repr(raw)}
        ) from exc


@dataclass(frozen=True)
class ParsedRow:
    customer_id: str
    customer: dict[str, Any]  # the customer's details the row gives (its empty columns left out)
    connection_id: str
    connection_type: str
    connection: dict[str, Any]  # the connection's details the row gives
    monthly_income: Decimal | None
    income_declared_on: date | None

    @property
    def has_connection(self) -> bool:
        return bool(self.connection_id or self.connection_type or self.connection)


def _parse(row: dict[str, Any]) -> ParsedRow:
    customer: dict[str, Any] = {
        name: _text(row, name)
        for name in ("name", "national_id", "email", "phone", "address", "organisation")
        if _text(row, name)
    }
    choices = {
        "kind": _choice(row, "kind", KINDS),
        "preferred_language": _choice(row, "preferred_language", LANGUAGES),
    }
    flags = {name: _flag(row, name) for name in ("notify_bills", "notify_reminders", "notify_payments")}
    customer |= {name: value for name, value in (choices | flags).items() if value is not None}
    connection: dict[str, Any] = {
        name: _text(row, name)
        for name in ("meter_number", "meter_type", "division", "subdivision")
        if _text(row, name)
    }
    extra = {
        "installation_date": _date(row, "installation_date"),
        "status": _choice(row, "status", NEW_STATUSES),
    }
    connection |= {name: value for name, value in extra.items() if value is not None}
    income, declared_on = _amount(row, "monthly_income"), _date(row, "income_declared_on")
    if (income is None) != (declared_on is None):
        raise RowProblem(_("Give monthly_income and income_declared_on together."))
    return ParsedRow(
        customer_id=_text(row, "customer_id"),
        customer=customer,
        connection_id=_text(row, "connection_id"),
        connection_type=_text(row, "connection_type"),
        connection=connection,
        monthly_income=income,
        income_declared_on=declared_on,
    )


@dataclass
class _Import:
    provider: Provider
    imported_by: User | None
    logins: bool
    types: dict[str, ConnectionType]


def customers_import(
    *, provider: Provider, rows: Iterable[Any], imported_by: User | None, logins: bool = False
) -> ImportReport:
    """Create the customers and connections of the rows, each row whole or not at all (see above).

    `logins`: each new customer with an e-mail gets a login (the provider's customer user with that
    address, or a new one without a password), as the sample file's customers sign in to the portal."""
    types = {row.code: row for row in ConnectionType.objects.filter(provider=provider)}
    run = _Import(provider=provider, imported_by=imported_by, logins=logins, types=types)
    report = ImportReport()
    for index, row in enumerate(rows, start=1):
        as_given = ImportedRow(
            row=index,
            customer_id=_given(row, "customer_id"),
            connection_id=_given(row, "connection_id"),
            result=RowResult.REFUSED,
        )
        try:
            if not isinstance(row, dict):
                raise RowProblem(_("A row must be an object with named fields."))
            report.rows.append(_import_row(run, index, _parse(row)))
        except RowProblem as problem:
            as_given.reason = str(problem)
            report.rows.append(as_given)
        except DomainError as refusal:  # the row's transaction rolled back: nothing of it is kept
            as_given.reason = refusal.detail
            report.rows.append(as_given)
    return report


def _given(row: Any, name: str) -> str:
    """A number as the row gives it, for its result (whatever the row holds)."""
    value = row.get(name) if isinstance(row, dict) else None
    return str(value).strip()[:40] if isinstance(value, str | int) else ""


@transaction.atomic
def _import_row(run: _Import, index: int, row: ParsedRow) -> ImportedRow:
    customer = (
        Customer.objects.filter(provider=run.provider, number=row.customer_id).first()
        if row.customer_id
        else None
    )
    customer_created = customer is None
    if customer is None:
        customer = _new_customer(run, row)
    else:
        _refuse_differences(
            _("Customer %(number)s") % {"number": customer.number},
            customer,
            customer_values_clean(row.customer),
        )
    connection_number, connection_created = "", False
    if row.has_connection:
        connection, connection_created = _connection(run, row, customer)
        connection_number = connection.number
    return ImportedRow(
        row=index,
        customer_id=customer.number,
        connection_id=connection_number,
        result=RowResult.CREATED if customer_created or connection_created else RowResult.UNCHANGED,
        customer_created=customer_created,
        connection_created=connection_created,
    )


def _new_customer(run: _Import, row: ParsedRow) -> Customer:
    if "name" not in row.customer:
        raise DomainError(_("A new customer needs a name."), field="name")
    user = None
    email = normalize_email(row.customer.get("email", ""))
    if run.logins and email:
        user = User.objects.filter(email=email, provider=run.provider).first()
    return customer_create(
        provider=run.provider,
        number=row.customer_id,
        **row.customer,
        user=user,
        login=run.logins and bool(email) and user is None,
        created_by=run.imported_by,
    )


def _connection(run: _Import, row: ParsedRow, customer: Customer) -> tuple[ServiceConnection, bool]:
    """The row's connection, found (and checked against the row) or created; and whether it was created."""
    existing = (
        ServiceConnection.objects.filter(provider=run.provider, number=row.connection_id)
        .select_related("customer", "connection_type")
        .first()
        if row.connection_id
        else None
    )
    if existing is not None:
        _refuse_changed_connection(row, existing, customer)
        return existing, False
    if not row.connection_type:
        raise DomainError(
            _("Give the connection's type (connection_type) to add a connection."), field="connectionType"
        )
    connection_type = run.types.get(row.connection_type)
    if connection_type is None:
        raise DomainError(
            _("No connection type %(code)s; the types are: %(types)s.")
            % {"code": row.connection_type, "types": ", ".join(sorted(run.types)) or _("none yet")},
            field="connectionType",
        )
    connection = connection_create(
        customer=customer, connection_type=connection_type, number=row.connection_id, **row.connection
    )
    if row.monthly_income is not None:
        connection_income_declare(
            connection=connection,
            monthly_income=row.monthly_income,
            declared_on=row.income_declared_on,
            recorded_by=run.imported_by,
        )
    return connection, True


def _refuse_changed_connection(row: ParsedRow, connection: ServiceConnection, customer: Customer) -> None:
    what = _("Connection %(number)s") % {"number": connection.number}
    if connection.customer_id != customer.pk:
        raise DomainError(
            _("%(what)s is customer %(owner)s's, not %(customer)s's.")
            % {"what": what, "owner": connection.customer.number, "customer": customer.number}
        )
    if row.connection_type and row.connection_type != connection.connection_type.code:
        raise DomainError(
            _(
                "%(what)s exists with type %(stored)s, not %(given)s; a type change is a step of the "
                "connection's life, made on its page."
            )
            % {"what": what, "stored": connection.connection_type.code, "given": row.connection_type},
            field="connectionType",
        )
    _refuse_differences(what, connection, row.connection)
    if row.monthly_income is not None and (row.monthly_income, row.income_declared_on) != (
        connection.declared_monthly_income,
        connection.income_declared_on,
    ):
        raise DomainError(
            _("%(what)s exists with another declared income; record a new declaration on its page.")
            % {"what": what},
            field="monthlyIncome",
        )


def _refuse_differences(what: str, stored: Customer | ServiceConnection, given: dict[str, Any]) -> None:
    differ = [
        _("%(name)s (%(stored)s stored, %(given)s in the file)")
        % {"name": name, "stored": getattr(stored, name), "given": value}
        for name, value in given.items()
        if getattr(stored, name) != value
    ]
    if differ:
        raise DomainError(
            _("%(what)s exists with other details: %(details)s. The import only adds; change it on its page.")
            % {"what": what, "details": "; ".join(differ)}
        )


# --- the sample file -----------------------------------------------------------------------------


def sample_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A disco_sample.json's customers and connections as import rows: one per connection, with its
    customer's details, and one per customer without a connection."""
    places = {(d["division_id"], d["subdivision_id"]): d for d in data.get("divisions", [])}
    customers = {item["customer_id"]: item for item in data.get("customers", [])}
    rows = []
    connected = set()
    for item in data.get("connections", []):
        owner = customers.get(item["customer_id"], {"customer_id": item["customer_id"]})
        place = places.get((item.get("division_id"), item.get("subdivision_id")), {})
        rows.append(
            {
                **_sample_customer(owner),
                "connection_id": item["connection_id"],
                "connection_type": str(item["connection_type_code"]),
                "meter_type": item.get("meter_type") or "",
                "division": place.get("division_name", ""),
                "subdivision": place.get("subdivision_name", ""),
                "installation_date": item.get("installation_date") or "",
                "status": item.get("status") or ConnectionStatus.ACTIVE,
            }
        )
        connected.add(item["customer_id"])
    rows += [_sample_customer(item) for item in customers.values() if item["customer_id"] not in connected]
    return rows


def _sample_customer(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "customer_id": item["customer_id"],
        "name": f"{item.get('first_name') or ''} {item.get('last_name') or ''}".strip(),
        "email": item.get("email") or "",
        "phone": item.get("phone_number") or "",
        "address": item.get("address") or "",
        "kind": item.get("customer_type") or "",
        "organisation": item.get("org_name") or "",
    }


@dataclass(frozen=True)
class SampleImportResult:
    customers: ImportReport
    readings: UploadReport

    @property
    def customers_created(self) -> int:
        return self.customers.customers_created

    @property
    def connections_created(self) -> int:
        return self.customers.connections_created


def sample_import(*, provider: Provider, data: dict[str, Any]) -> SampleImportResult:
    """A disco_sample.json-shaped file: its customers (each with a login) and connections, then its
    meter readings (the sample's connections are Active, loaded with their history)."""
    customers = customers_import(provider=provider, rows=sample_rows(data), imported_by=None, logins=True)
    readings = readings_upload(
        provider=provider, rows=data.get("meter_readings", []), recorded_by=None, source=ReadingSource.IMPORT
    )
    return SampleImportResult(customers, readings)
