"""Customers, connections and meter readings: every write goes through here.

Customers and connections are numbered as the provider gives them or from its own series, checked
field by field, and scoped to one provider: a connection's type and its customer are its provider's.

Readings are cumulative registers, so each one is checked against its neighbours in time: a
register may not go down (unless the meter was replaced, which the reading records), nor exceed a
later reading's. Readings of one connection are serialised on the connection row.
"""

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Message, User, normalize_email
from accounts.roles import Role
from accounts.services import EmailTaken, invitation_send, user_create
from billing.models import (
    ConnectionStatus,
    Customer,
    CustomerKind,
    Language,
    MeterExchange,
    MeterReading,
    NumberCounter,
    NumberSeries,
    ReadingSource,
    ServiceConnection,
)
from billing.signals import rows_bulk_created
from config.errors import Conflict, DomainError
from providers.models import ConnectionType, Provider
from providers.schedule import number

REGISTERS = MeterReading.REGISTERS
REGISTER_LIMIT = Decimal("1e10")
KWH_STEP = Decimal("0.0001")
READING_YEARS = range(2000, 2100)  # anything else is a typo, and some dates overflow a time zone


class ReadingRefused(DomainError):
    code = "reading_refused"


class ReadingDuplicate(Conflict):
    code = "reading_duplicate"


# --- customers and connections -------------------------------------------------------------------
#
# A number is given by the provider (as printed on its old bills) or, when none is given, generated
# from the provider's own series (`DISCO-C-000123`, `DISCO-SC-000123`) under a locked counter row.
# Either way a number is its provider's once: a clash is a 409 that names it.

CNIC = re.compile(r"[0-9]{5}-[0-9]{7}-[0-9]")
CNIC_DIGITS = re.compile(r"[0-9]{13}")
PHONE = re.compile(r"\+?[0-9(][0-9 ()-]*")
PHONE_DIGITS = range(7, 16)  # a local number has 7 or more; E.164 allows 15 at most
ACCOUNT_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}")
NUMBER_FORMAT = {NumberSeries.CUSTOMER: "{code}-C-{n:06d}", NumberSeries.CONNECTION: "{code}-SC-{n:06d}"}
INCOME_LIMIT = Decimal("1e12")  # NUMERIC(14,2)
CENT = Decimal("0.01")

CUSTOMER_FIELDS = (
    "name", "email", "phone", "address", "national_id", "kind", "organisation", "preferred_language",
    "notify_bills", "notify_reminders", "notify_payments",
)  # fmt: skip
# What `connection_update` changes. Status, type and customer change only through the connection's
# life (connect, disconnect, a type change, a move), each a service of its own.
CONNECTION_FIELDS = ("meter_number", "meter_type", "division", "subdivision", "installation_date")

# A refusal names the field as the API does (pages and admin map these to their own names).
API_NAMES = {
    "national_id": "nationalId",
    "phone": "phoneNumber",
    "preferred_language": "preferredLanguage",
    "notify_bills": "notifyBills",
    "notify_reminders": "notifyReminders",
    "notify_payments": "notifyPayments",
    "connection_type": "connectionType",
    "meter_number": "meterNumber",
    "meter_type": "meterType",
    "installation_date": "installationDate",
    "declared_monthly_income": "monthlyIncome",
    "income_declared_on": "declaredOn",
}


class NumberTaken(Conflict):
    code = "number_taken"


class MeterInUse(Conflict):
    code = "meter_in_use"


class ConnectionClosed(Conflict):
    code = "connection_closed"


def _api_name(model: type[Customer] | type[ServiceConnection], name: str) -> str:
    if name == "number":
        return "customerId" if model is Customer else "connectionId"
    return API_NAMES.get(name, name)


def _full_clean(row: Customer | ServiceConnection, *, exclude: list[str]) -> None:
    """The model's own checks (lengths, choices, the e-mail's form), refused at the first field."""
    try:
        row.full_clean(exclude=exclude, validate_unique=False)
    except ValidationError as invalid:
        name, messages = next(iter(invalid.message_dict.items()))
        if name == NON_FIELD_ERRORS:
            raise DomainError(" ".join(messages)) from invalid
        label = str(type(row)._meta.get_field(name).verbose_name).capitalize()
        raise DomainError(
            _("%(label)s: %(messages)s") % {"label": label, "messages": " ".join(messages)},
            field=_api_name(type(row), name),
        ) from invalid


def _account_number(value: str, *, what: str) -> str:
    value = value.strip()
    if not ACCOUNT_NUMBER.fullmatch(value):
        message = (
            _(
                "A customer number is up to 40 letters, digits, dashes, dots, slashes or underscores, starting "
                "with a letter or digit (e.g. LHR-RES-0001); %(value)s is not one. Leave it empty to have one given."
            )
            if what == "customer"
            else _(
                "A connection number is up to 40 letters, digits, dashes, dots, slashes or underscores, starting "
                "with a letter or digit (e.g. LHR-RES-0001); %(value)s is not one. Leave it empty to have one given."
            )
        )
        raise DomainError(
            message % {"value": repr(value)},
            field="customerId" if what == "customer" else "connectionId",
        )
    return value


def _next_number(*, provider: Provider, series: str, taken: Any) -> str:
    """The next number of the provider's series; the counter row stays locked until the caller commits.

    A number given by hand that the series has reached is skipped (`taken`: the rows it may not clash with)."""
    counter, _created = NumberCounter.objects.select_for_update().get_or_create(
        provider=provider, series=series
    )
    last = counter.last
    while True:
        last += 1
        candidate = NUMBER_FORMAT[series].format(code=provider.code, n=last)
        if not taken.filter(number=candidate).exists():
            break
    NumberCounter.objects.filter(pk=counter.pk).update(last=last)
    return candidate


def _insert(row: Customer | ServiceConnection, *, taken: NumberTaken) -> None:
    """Insert the row; a number another writer took meanwhile is the same 409 as one found before."""
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError as clash:
        if type(row).objects.filter(provider_id=row.provider_id, number=row.number).exists():
            raise taken from clash
        raise


def _national_id(value: str) -> str:
    """A CNIC as printed (12345-1234567-1); 13 digits typed without the dashes get them."""
    value = value.strip()
    if CNIC_DIGITS.fullmatch(value):
        value = f"{value[:5]}-{value[5:12]}-{value[12]}"
    if value and not CNIC.fullmatch(value):
        raise DomainError(
            _("A national id (CNIC) is 13 digits written 12345-1234567-1; %(value)s is not one.")
            % {"value": repr(value)},
            field="nationalId",
        )
    return value


def _phone(value: str) -> str:
    value = " ".join(value.split())
    if value and (not PHONE.fullmatch(value) or len(re.findall(r"[0-9]", value)) not in PHONE_DIGITS):
        raise DomainError(
            _(
                "A phone number has 7 to 15 digits, with an optional leading + and spaces, dashes or "
                "brackets, e.g. 0300-1234567; %(value)s is not one."
            )
            % {"value": repr(value)},
            field="phoneNumber",
        )
    return value


def customer_values_clean(values: dict[str, Any]) -> dict[str, Any]:
    """Contact details as they are kept: trimmed, the e-mail lower-case, national id and phone checked."""
    cleaned = dict(values)
    for name in ("name", "address", "organisation"):
        if name in cleaned:
            cleaned[name] = " ".join(str(cleaned[name]).split())
    if "name" in cleaned and not cleaned["name"]:
        raise DomainError(_("Give the customer's name."), field="name")
    if "email" in cleaned:
        cleaned["email"] = normalize_email(cleaned["email"])
    if "national_id" in cleaned:
        cleaned["national_id"] = _national_id(cleaned["national_id"])
    if "phone" in cleaned:
        cleaned["phone"] = _phone(cleaned["phone"])
    return cleaned


@transaction.atomic
def customer_create(
    *,
    provider: Provider,
    name: str,
    number: str = "",
    email: str = "",
    phone: str = "",
    address: str = "",
    national_id: str = "",
    kind: str = CustomerKind.RESIDENTIAL,
    organisation: str = "",
    preferred_language: str = Language.ENGLISH,
    notify_bills: bool = True,
    notify_reminders: bool = True,
    notify_payments: bool = True,
    user: User | None = None,
    login: bool = False,
    invite: bool = False,
    created_by: User | None = None,
) -> Customer:
    """A customer account with its own contact details, numbered as given or next in the provider's
    series. A login is optional: `user` links an existing customer user of the provider; `login=True`
    creates one from the e-mail, with no password (it cannot sign in until a password is set through
    an invitation). `invite=True` with an e-mail address: invited to the portal at once
    (`customer_invite`), in the same transaction."""
    given = _account_number(number, what="customer") if number.strip() else ""
    if given and Customer.objects.filter(provider=provider, number=given).exists():
        raise NumberTaken(
            _("Customer %(number)s already exists: give another number, or none to have one given.")
            % {"number": given},
            field="customerId",
        )
    values = customer_values_clean(
        {
            "name": name, "email": email, "phone": phone, "address": address, "national_id": national_id,
            "kind": kind, "organisation": organisation, "preferred_language": preferred_language,
            "notify_bills": notify_bills, "notify_reminders": notify_reminders, "notify_payments": notify_payments,
        }
    )  # fmt: skip
    customer = Customer(provider=provider, number=given or "-", **values)
    _full_clean(customer, exclude=["user", "provider"])
    if user is None and login:
        if not customer.email:
            raise DomainError(_("A login needs the customer's e-mail address."), field="email")
        user = user_create(
            email=customer.email,
            name=customer.name,
            provider=provider,
            roles=[Role.CUSTOMER],
            phone=customer.phone,
            address=customer.address,
            created_by=created_by,
        )
    elif user is not None and (user.provider_id != provider.pk or Role.CUSTOMER not in user.role_names):
        raise DomainError(_("The user must be a customer of this provider."), field="user")
    customer.user = user
    # The number last: the series' counter stays locked only from here to the commit.
    customer.number = given or _next_number(
        provider=provider, series=NumberSeries.CUSTOMER, taken=Customer.objects.filter(provider=provider)
    )
    _insert(
        customer,
        taken=NumberTaken(
            _("Customer %(number)s already exists.") % {"number": customer.number}, field="customerId"
        ),
    )
    if invite and customer.email:
        customer_invite(customer=customer, invited_by=created_by)
        customer.refresh_from_db(fields=["user"])
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, **changes: Any) -> Customer:
    """Change a customer's contact details, kind, organisation, national id, language or notification
    choices. The number stays: it is printed on every bill."""
    unknown = set(changes) - set(CUSTOMER_FIELDS)
    if unknown:
        raise ValueError(f"customer_update cannot change {sorted(unknown)}")
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    changed = {
        name: value
        for name, value in customer_values_clean(changes).items()
        if getattr(customer, name) != value
    }
    for name, value in changed.items():
        setattr(customer, name, value)
    _full_clean(customer, exclude=["user", "provider"])
    if changed:
        customer.save(update_fields=[*changed, "updated_at"])
    return customer


def _refuse_meter_in_use(connection: ServiceConnection) -> None:
    """A meter serves one connection at a time: none other of the provider's that is not closed."""
    if not connection.meter_number:
        return
    other = (
        ServiceConnection.objects.filter(
            provider_id=connection.provider_id, meter_number=connection.meter_number
        )
        .exclude(status=ConnectionStatus.CLOSED)
        .exclude(pk=connection.pk)
        .first()
    )
    if other is not None:
        raise MeterInUse(
            _("Meter %(meter)s is on connection %(number)s already; a meter serves one connection at a time.")
            % {"meter": connection.meter_number, "number": other.number},
            field="meterNumber",
        )


@transaction.atomic
def connection_create(
    *,
    customer: Customer,
    connection_type: ConnectionType,
    number: str = "",
    meter_number: str = "",
    meter_type: str = "",
    division: str = "",
    subdivision: str = "",
    installation_date: date | None = None,
    status: str = ConnectionStatus.PENDING,
) -> ServiceConnection:
    """A connection of the customer, numbered as given or next in the provider's series. It is Pending
    until connected with its first reading (`connection_connect`); only an importer loading connections
    with their history creates them Active."""
    provider = customer.provider
    if connection_type.provider_id != provider.pk:
        raise DomainError(_("That connection type belongs to another provider."), field="connectionType")
    if status not in (ConnectionStatus.PENDING, ConnectionStatus.ACTIVE):
        raise DomainError(
            _("A new connection is Pending (or Active, loaded with its readings), not %(status)s.")
            % {"status": status},
            field="status",
        )
    given = _account_number(number, what="connection") if number.strip() else ""
    if given and ServiceConnection.objects.filter(provider=provider, number=given).exists():
        raise NumberTaken(
            _("Connection %(number)s already exists: give another number, or none to have one given.")
            % {"number": given},
            field="connectionId",
        )
    connection = ServiceConnection(
        provider=provider,
        customer=customer,
        number=given or "-",
        connection_type=connection_type,
        meter_number=meter_number.strip(),
        meter_type=meter_type.strip(),
        division=division.strip(),
        subdivision=subdivision.strip(),
        installation_date=installation_date,
        status=status,
    )
    _full_clean(connection, exclude=["customer", "provider", "connection_type"])
    _refuse_meter_in_use(connection)
    connection.number = given or _next_number(
        provider=provider,
        series=NumberSeries.CONNECTION,
        taken=ServiceConnection.objects.filter(provider=provider),
    )
    _insert(
        connection,
        taken=NumberTaken(
            _("Connection %(number)s already exists.") % {"number": connection.number}, field="connectionId"
        ),
    )
    return connection


def _locked_open(connection: ServiceConnection) -> ServiceConnection:
    """The connection's row, locked; a closed one keeps its record as it was."""
    connection = ServiceConnection.objects.select_for_update().get(pk=connection.pk)
    if connection.status == ConnectionStatus.CLOSED:
        raise ConnectionClosed(
            _("Connection %(number)s is closed; its record stays as it was.") % {"number": connection.number}
        )
    return connection


@transaction.atomic
def connection_update(*, connection: ServiceConnection, **changes: Any) -> ServiceConnection:
    """Change a connection's meter details, division or installation date.

    Its meter number changes here only until the meter's first reading (a typo); a meter that has
    readings is replaced by a meter exchange, which records both meters' readings."""
    unknown = set(changes) - set(CONNECTION_FIELDS)
    if unknown:
        raise ValueError(f"connection_update cannot change {sorted(unknown)}")
    connection = _locked_open(connection)
    for name in ("meter_number", "meter_type", "division", "subdivision"):
        if name in changes:
            changes[name] = changes[name].strip()
    changed = {name: value for name, value in changes.items() if getattr(connection, name) != value}
    first = MeterReading.objects.filter(connection=connection).order_by("taken_at").first()
    if "meter_number" in changed and first is not None:
        raise DomainError(
            _(
                "Connection %(number)s has readings of meter %(meter)s: a new meter is fitted by a meter "
                "exchange, with the old meter's last reading and the new one's first."
            )
            % {"number": connection.number, "meter": connection.meter_number or _("(unnumbered)")},
            field="meterNumber",
        )
    installed = changed.get("installation_date")
    if installed is not None and first is not None and installed > timezone.localdate(first.taken_at):
        raise DomainError(
            _("The first reading of connection %(number)s was taken on %(date)s: it was installed by then.")
            % {"number": connection.number, "date": timezone.localdate(first.taken_at)},
            field="installationDate",
        )
    for name, value in changed.items():
        setattr(connection, name, value)
    _full_clean(connection, exclude=["customer", "provider", "connection_type"])
    if "meter_number" in changed:
        _refuse_meter_in_use(connection)
    if changed:
        connection.save(update_fields=list(changed))
    return connection


@transaction.atomic
def connection_income_declare(
    *, connection: ServiceConnection, monthly_income: Decimal, declared_on: date, recorded_by: User | None
) -> ServiceConnection:
    """Record the monthly income the customer declared for this connection, the day they declared it
    and who recorded it: an income-based subsidy applies while it is at or below the subsidy's ceiling.
    A declaration replaces the one before it, unless that one is newer."""
    connection = _locked_open(connection)
    if not monthly_income.is_finite() or not 0 <= monthly_income < INCOME_LIMIT:
        raise DomainError(
            _("A monthly income is an amount from 0 up, in the provider's currency."), field="monthlyIncome"
        )
    if monthly_income != monthly_income.quantize(CENT):
        raise DomainError(
            _("Give the monthly income to the cent at most, e.g. 45000.50."), field="monthlyIncome"
        )
    if declared_on > timezone.localdate():
        raise DomainError(
            _("The declaration is dated in the future (%(date)s).") % {"date": declared_on},
            field="declaredOn",
        )
    if connection.income_declared_on is not None and declared_on < connection.income_declared_on:
        raise DomainError(
            _(
                "A later declaration, of %(date)s, is on record for connection %(number)s; record a newer "
                "one, or none."
            )
            % {"date": connection.income_declared_on, "number": connection.number},
            field="declaredOn",
        )
    connection.declared_monthly_income = monthly_income
    connection.income_declared_on = declared_on
    connection.income_recorded_by = recorded_by
    connection.save(update_fields=["declared_monthly_income", "income_declared_on", "income_recorded_by"])
    return connection


# Why a connection in each status other than Active takes no reading (its lifecycle steps take theirs).
NO_READINGS = {
    ConnectionStatus.PENDING: gettext_lazy(
        "Connection %(number)s is not connected yet; its first reading is taken when it is connected."
    ),
    ConnectionStatus.DISCONNECTED: gettext_lazy(
        "Connection %(number)s is disconnected; it takes no readings."
    ),
    ConnectionStatus.CLOSED: gettext_lazy("Connection %(number)s is closed; it takes no readings."),
}


def check_takes_readings(connection: ServiceConnection) -> None:
    if connection.status != ConnectionStatus.ACTIVE:
        raise ReadingRefused(NO_READINGS[connection.status] % {"number": connection.number})


def _when(moment: datetime) -> str:
    """A moment as a refusal names it: in the provider's local time, as readings are taken."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def _check_reading(
    *,
    connection: ServiceConnection,
    taken_at: datetime,
    values: dict[str, Decimal],
    meter_replaced: bool,
    before: MeterReading | None,
    after: MeterReading | None,
    now: datetime,
) -> None:
    """Could the meter have shown `values` at `taken_at`, between its readings `before` and `after`?"""
    if timezone.is_naive(taken_at):
        raise ReadingRefused(_("Give the reading's time with its time zone."), field="takenAt")
    if taken_at > now:
        raise ReadingRefused(
            _("The reading is dated in the future (%(when)s).") % {"when": _when(taken_at)}, field="takenAt"
        )
    negative = [name for name, value in values.items() if value < 0]
    if negative:
        raise ReadingRefused(
            _("A register cannot be negative: %(registers)s.") % {"registers": ", ".join(negative)},
            field=negative[0],
        )
    if before is not None and before.taken_at == taken_at:
        raise ReadingDuplicate(
            _("Connection %(number)s already has a reading at %(when)s.")
            % {"number": connection.number, "when": _when(taken_at)},
            field="takenAt",
        )
    if before is not None and not meter_replaced:
        for name in REGISTERS:
            if values[name] < getattr(before, name):
                raise ReadingRefused(
                    _(
                        "The %(register)s register (%(value)s) is lower than the reading of %(when)s "
                        "(%(before)s). If the meter was exchanged, record the meter exchange (the old "
                        "meter's final reading and the new one's first)."
                    )
                    % {
                        "register": name.replace("_", " "),
                        "value": number(values[name]),
                        "when": _when(before.taken_at),
                        "before": number(getattr(before, name)),
                    },
                    field=name,
                )
    ceiling = _ceiling(after)
    if ceiling is not None:
        limits, what = ceiling
        for name in REGISTERS:
            if values[name] > limits[name]:
                raise ReadingRefused(
                    _("The %(register)s register (%(value)s) is higher than %(what)s (%(limit)s).")
                    % {
                        "register": name.replace("_", " "),
                        "value": number(values[name]),
                        "what": what,
                        "limit": number(limits[name]),
                    },
                    field=name,
                )


def _ceiling(after: MeterReading | None) -> tuple[dict[str, Decimal], str] | None:
    """What a reading taken before `after` may not exceed, and how to name it: `after`'s registers;
    where `after` is a new meter's first reading, the old meter's final registers at that exchange;
    nothing for a reading flagged as a new meter's without an exchange (the old meter's end is unknown)."""
    if after is None:
        return None
    exchange = getattr(after, "exchange", None)  # None when `after` is no exchange's first reading
    if exchange is not None:
        limits = {name: getattr(exchange, f"final_{name}") for name in REGISTERS}
        return limits, _("the old meter's final reading at the exchange of %(when)s") % {
            "when": _when(after.taken_at)
        }
    if after.meter_replaced:
        return None
    return {name: getattr(after, name) for name in REGISTERS}, (
        _("the later reading of %(when)s") % {"when": _when(after.taken_at)}
    )


@transaction.atomic
def reading_record(
    *,
    connection: ServiceConnection,
    taken_at: datetime,
    registers: dict[str, Decimal],
    meter_replaced: bool = False,
    source: str = ReadingSource.API,
    recorded_by: User | None = None,
    now: datetime | None = None,
) -> MeterReading:
    """Record one reading, refused with the reason if the meter could not have shown it."""
    connection = ServiceConnection.objects.select_for_update().get(pk=connection.pk)
    check_takes_readings(connection)
    return reading_write(
        connection=connection,
        taken_at=taken_at,
        registers=registers,
        meter_replaced=meter_replaced,
        source=source,
        recorded_by=recorded_by,
        now=now,
    )


def reading_write(
    *,
    connection: ServiceConnection,
    taken_at: datetime,
    registers: dict[str, Decimal],
    meter_replaced: bool = False,
    source: str = ReadingSource.API,
    recorded_by: User | None = None,
    now: datetime | None = None,
) -> MeterReading:
    """Check and store a reading of a connection the caller holds locked, whatever its status: the
    lifecycle steps take theirs this way (the first reading of a connection not yet connected)."""
    values = {name: registers.get(name, Decimal("0")) for name in REGISTERS}
    readings = MeterReading.objects.filter(connection=connection)
    _check_reading(
        connection=connection,
        taken_at=taken_at,
        values=values,
        meter_replaced=meter_replaced,
        before=readings.filter(taken_at__lte=taken_at).order_by("-taken_at").first(),
        after=readings.filter(taken_at__gt=taken_at).select_related("exchange").order_by("taken_at").first(),
        now=now or timezone.now(),
    )
    return MeterReading.objects.create(
        provider_id=connection.provider_id,
        connection=connection,
        taken_at=taken_at,
        meter_replaced=meter_replaced,
        source=source,
        recorded_by=recorded_by,
        **values,
    )


@dataclass
class UploadReport:
    accepted: int = 0
    unchanged: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)


def _parse_row(row: dict[str, Any]) -> tuple[str, datetime, dict[str, Decimal], bool]:
    number = str(row.get("connection_id") or row.get("connectionId") or "").strip()
    if not number:
        raise ValueError(_("the connection id is missing"))
    raw_time = str(row.get("timestamp") or row.get("takenAt") or "").strip()
    try:
        taken_at = datetime.fromisoformat(raw_time)
    except ValueError as exc:
        raise ValueError(
            _("the timestamp %(value)s is not a date and time like 2024-07-31T23:59")
            % {"value": repr(raw_time)}
        ) from exc
    if taken_at.year not in READING_YEARS:
        raise ValueError(
            _("the timestamp %(value)s is not a plausible meter reading time") % {"value": repr(raw_time)}
        )
    if timezone.is_naive(taken_at):  # the provider's local time, as meters and their files give it
        taken_at = timezone.make_aware(taken_at)
    registers = {}
    for name in REGISTERS:
        raw = row.get(name, 0 if name.startswith("export") else None)
        try:
            registers[name] = Decimal(str(raw))
        except (InvalidOperation, ValueError) as exc:
            raise ValueError(
                _("%(register)s %(value)s is not a number") % {"register": name, "value": repr(raw)}
            ) from exc
        value = registers[name]
        # The registers are NUMERIC(14,4): at most 10 digits before the point and 4 after.
        if not value.is_finite() or abs(value) >= REGISTER_LIMIT or value != value.quantize(KWH_STEP):
            raise ValueError(
                _("%(register)s %(value)s is not a meter reading (up to 10 digits and 4 decimals)")
                % {"register": name, "value": repr(raw)}
            )
    replaced = str(row.get("meter_replaced", "")).strip().lower() in {"1", "true", "yes"}
    return number, taken_at, registers, replaced


def readings_upload(
    *,
    provider: Provider,
    rows: list[dict[str, Any]],
    recorded_by: User | None,
    source: str = ReadingSource.UPLOAD,
) -> UploadReport:
    """Record many readings: good rows are kept, each refused row is reported with its reason.

    Idempotent on connection and time: a reading already stored with the same registers counts as
    unchanged. Each connection's rows are checked in time order against its stored readings (the
    same checks as `reading_record`) and written at once, in one transaction per connection.
    """
    report = UploadReport()
    parsed: dict[str, list[tuple[int, datetime, dict[str, Decimal], bool]]] = {}
    for index, row in enumerate(rows, start=1):
        try:
            number, taken_at, registers, replaced = _parse_row(row)
        except ValueError as problem:
            report.refused.append(
                {"row": index, "connectionId": row.get("connection_id"), "reason": str(problem)}
            )
            continue
        parsed.setdefault(number, []).append((index, taken_at, registers, replaced))
    connections = {
        c.number: c for c in ServiceConnection.objects.filter(provider=provider, number__in=parsed)
    }
    now = timezone.now()
    for number, connection_rows in parsed.items():
        connection = connections.get(number)
        if connection is None:
            report.refused += [
                {
                    "row": index,
                    "connectionId": number,
                    "reason": _("no connection %(number)s") % {"number": number},
                }
                for index, *_rest in connection_rows
            ]
            continue
        _upload_for_connection(
            connection, sorted(connection_rows, key=lambda r: r[1]), source, recorded_by, now, report
        )
    report.refused.sort(key=lambda refusal: refusal["row"])
    return report


@transaction.atomic
def _upload_for_connection(
    connection: ServiceConnection,
    rows: list[tuple[int, datetime, dict[str, Decimal], bool]],
    source: str,
    recorded_by: User | None,
    now: datetime,
    report: UploadReport,
) -> None:
    connection = ServiceConnection.objects.select_for_update().get(pk=connection.pk)
    known = list(
        MeterReading.objects.filter(connection=connection).select_related("exchange").order_by("taken_at")
    )
    times = [reading.taken_at for reading in known]
    new: list[MeterReading] = []
    for index, taken_at, values, replaced in rows:
        position = bisect_right(times, taken_at)
        before = known[position - 1] if position else None
        if (
            before is not None
            and before.taken_at == taken_at
            and all(getattr(before, name) == values[name] for name in REGISTERS)
        ):
            report.unchanged += 1
            continue
        after = known[position] if position < len(known) else None
        try:
            check_takes_readings(connection)
            _check_reading(
                connection=connection,
                taken_at=taken_at,
                values=values,
                meter_replaced=replaced,
                before=before,
                after=after,
                now=now,
            )
        except DomainError as refusal:
            report.refused.append({"row": index, "connectionId": connection.number, "reason": refusal.detail})
            continue
        reading = MeterReading(
            provider_id=connection.provider_id,
            connection=connection,
            taken_at=taken_at,
            meter_replaced=replaced,
            source=source,
            recorded_by=recorded_by,
            **values,
        )
        known.insert(position, reading)
        times.insert(position, taken_at)
        new.append(reading)
    MeterReading.objects.bulk_create(new)
    rows_bulk_created.send(sender=MeterReading, rows=new)
    report.accepted += len(new)


# --- invitations and the customer's own changes ------------------------------------------------------


class EmailMissing(DomainError):
    code = "email_missing"


@transaction.atomic
def customer_invite(*, customer: Customer, invited_by: User | None) -> Message:
    """E-mail the customer an invitation to set a password and sign in to the portal.

    A customer without a login gets one made from their e-mail address (Customer role, no password
    until they set one through the invitation's link); one with a login is invited again at its
    address (a lost or expired invitation). Refused without an e-mail address, or when another account
    uses it already (409)."""
    customer = (
        Customer.objects.select_for_update(of=("self",))
        .select_related("provider", "user")
        .get(pk=customer.pk)
    )
    if customer.user is None:
        if not customer.email:
            raise EmailMissing(
                _("Customer %(number)s has no e-mail address: add one, then invite them.")
                % {"number": customer.number},
                field="email",
            )
        if User.objects.filter(email=customer.email).exists():
            raise EmailTaken(
                _(
                    "The e-mail address %(email)s is already used by another account; the customer needs an "
                    "address of their own to sign in with."
                )
                % {"email": customer.email},
                field="email",
            )
        customer.user = user_create(
            email=customer.email,
            name=customer.name,
            provider=customer.provider,
            roles=[Role.CUSTOMER],
            phone=customer.phone,
            address=customer.address,
            created_by=invited_by,
        )
        customer.save(update_fields=["user", "updated_at"])
    return invitation_send(user=customer.user, language=customer.preferred_language)


# What a customer may change of their own account in the portal; the rest is the provider's to change.
PROFILE_FIELDS = (
    "email", "phone", "address", "preferred_language", "notify_bills", "notify_reminders", "notify_payments",
)  # fmt: skip


@transaction.atomic
def customer_profile_update(*, customer: Customer, **changes: Any) -> Customer:
    """A customer's own contact details (where e-mails go, phone, address), their language and their
    notification choices. Signing in is unchanged: the login keeps its own address."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"customer_profile_update cannot change {sorted(unknown)}")
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if "email" in changes:
        changes["email"] = normalize_email(changes["email"] or "")
    for name, value in changes.items():
        setattr(customer, name, value)
    try:
        customer.full_clean(exclude=["user", "provider"])
    except ValidationError as exc:
        name, messages = next(iter(exc.message_dict.items()))
        raise DomainError(" ".join(messages), field=PROFILE_API_NAMES.get(name, name)) from exc
    customer.save(update_fields=[*changes, "updated_at"])
    return customer


PROFILE_API_NAMES = {
    "preferred_language": "preferredLanguage",
    "notify_bills": "notifyBills",
    "notify_reminders": "notifyReminders",
    "notify_payments": "notifyPayments",
}
# --- meter exchanges ------------------------------------------------------------------------------


class ExchangeRefused(DomainError):
    code = "meter_exchange_refused"


class ExchangeDuplicate(Conflict):
    code = "meter_exchange_duplicate"


def _exchange_field(prefix: str, name: str) -> str:
    """The API's name of one of an exchange's registers: `final` + `import_peak` -> finalImportPeak."""
    return prefix + "".join(word.capitalize() for word in name.split("_"))


def _registers_of(given: dict[str, Decimal], prefix: str, role: str) -> dict[str, Decimal]:
    for name in REGISTERS[:2]:
        if given.get(name) is None:
            raise ExchangeRefused(
                _("Give the %(role)s %(register)s register.")
                % {"role": role, "register": name.replace("_", " ")},
                field=_exchange_field(prefix, name),
            )
    values = {name: given.get(name) or Decimal("0") for name in REGISTERS}
    for name, value in values.items():
        if value < 0:
            raise ExchangeRefused(
                _("A register cannot be negative: the %(role)s %(register)s.")
                % {"role": role, "register": name.replace("_", " ")},
                field=_exchange_field(prefix, name),
            )
    return values


@transaction.atomic
def meter_exchange_record(
    *,
    connection: ServiceConnection,
    at: datetime,
    old_final: dict[str, Decimal],
    new_first: dict[str, Decimal],
    new_meter_number: str,
    reason: str,
    recorded_by: User | None,
    new_meter_type: str = "",
    now: datetime | None = None,
) -> MeterExchange:
    """Record a meter exchange: the old meter's final registers and the new meter's first, at `at`.

    The old meter's final is checked against the readings before it (no register lower than the last
    one), the new meter's first against the readings after it (none higher than a later one), as
    readings are. The new first becomes the connection's reading at `at` (flagged as a new meter's),
    and the connection takes the new meter's number (and type, when given)."""
    connection = ServiceConnection.objects.select_for_update().get(pk=connection.pk)
    now = now or timezone.now()
    new_meter_number = new_meter_number.strip()
    reason = reason.strip()
    if connection.status != ConnectionStatus.ACTIVE:
        raise ExchangeRefused(
            _("Connection %(number)s is %(status)s; only an active connection's meter is exchanged.")
            % {"number": connection.number, "status": connection.get_status_display().lower()}
        )
    if timezone.is_naive(at):
        raise ExchangeRefused(_("Give the exchange's time with its time zone."), field="exchangedAt")
    if at > now:
        raise ExchangeRefused(
            _("The exchange is dated in the future (%(when)s).") % {"when": _when(at)}, field="exchangedAt"
        )
    if not new_meter_number:
        raise ExchangeRefused(_("Give the new meter's number."), field="newMeterNumber")
    if new_meter_number == connection.meter_number:
        raise ExchangeRefused(
            _("Meter %(meter)s is the one being taken out; give the new meter's number.")
            % {"meter": new_meter_number},
            field="newMeterNumber",
        )
    if not reason:
        raise ExchangeRefused(_("Say why the meter was exchanged."), field="reason")
    final = _registers_of(old_final, "final", _("old meter's final"))
    first = _registers_of(new_first, "first", _("new meter's first"))
    readings = MeterReading.objects.filter(connection=connection).select_related("exchange")
    before = readings.filter(taken_at__lte=at).order_by("-taken_at").first()
    after = readings.filter(taken_at__gt=at).order_by("taken_at").first()
    if before is not None and before.taken_at == at:
        message = (
            _(
                "Connection %(number)s already has a meter exchange at %(when)s; an exchange needs a moment of its own."
            )
            if getattr(before, "exchange", None)
            else _(
                "Connection %(number)s already has a reading at %(when)s; an exchange needs a moment of its own."
            )
        )
        raise ExchangeDuplicate(
            message % {"number": connection.number, "when": _when(at)},
            field="exchangedAt",
        )
    if before is not None:
        for name in REGISTERS:
            if final[name] < getattr(before, name):
                raise ExchangeRefused(
                    _(
                        "The old meter's final %(register)s register (%(value)s) is lower than the reading of "
                        "%(when)s (%(before)s)."
                    )
                    % {
                        "register": name.replace("_", " "),
                        "value": number(final[name]),
                        "when": _when(before.taken_at),
                        "before": number(getattr(before, name)),
                    },
                    field=_exchange_field("final", name),
                )
    ceiling = _ceiling(after)
    if ceiling is not None:
        limits, what = ceiling
        for name in REGISTERS:
            if first[name] > limits[name]:
                raise ExchangeRefused(
                    _(
                        "The new meter's first %(register)s register (%(value)s) is higher than %(what)s (%(limit)s)."
                    )
                    % {
                        "register": name.replace("_", " "),
                        "value": number(first[name]),
                        "what": what,
                        "limit": number(limits[name]),
                    },
                    field=_exchange_field("first", name),
                )
    reading = MeterReading.objects.create(
        provider_id=connection.provider_id,
        connection=connection,
        taken_at=at,
        meter_replaced=True,
        source=ReadingSource.EXCHANGE,
        recorded_by=recorded_by,
        **first,
    )
    exchange = MeterExchange(
        provider_id=connection.provider_id,
        connection=connection,
        first_reading=reading,
        exchanged_at=at,
        old_meter_number=connection.meter_number,
        old_meter_type=connection.meter_type,
        new_meter_number=new_meter_number,
        new_meter_type=new_meter_type.strip() or connection.meter_type,
        reason=reason,
        recorded_by=recorded_by,
        **{f"final_{name}": value for name, value in final.items()},
        **{f"first_{name}": value for name, value in first.items()},
    )
    exchange.full_clean(exclude=["provider", "connection", "first_reading", "recorded_by"])
    exchange.save()
    connection.meter_number, connection.meter_type = exchange.new_meter_number, exchange.new_meter_type
    connection.save(update_fields=["meter_number", "meter_type"])
    return exchange
