"""Customers, connections and meter readings: every write goes through here.

Readings are cumulative registers, so each one is checked against its neighbours in time: a
register may not go down (unless the meter was replaced, which the reading records), nor exceed a
later reading's. Readings of one connection are serialised on the connection row.
"""

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User, normalize_email
from accounts.roles import Role
from accounts.services import user_create
from billing.models import (
    ConnectionStatus,
    Customer,
    CustomerKind,
    Language,
    MeterExchange,
    MeterReading,
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


@transaction.atomic
def customer_create(
    *,
    provider: Provider,
    number: str,
    name: str,
    email: str = "",
    phone: str = "",
    address: str = "",
    national_id: str = "",
    kind: str = CustomerKind.RESIDENTIAL,
    organisation: str = "",
    preferred_language: str = Language.ENGLISH,
    user: User | None = None,
    login: bool = False,
    created_by: User | None = None,
) -> Customer:
    """A customer account with its own contact details. A login is optional: `user` links an existing
    customer user of the provider; `login=True` creates one from the e-mail, with no password (it
    cannot sign in until a password is set through an invitation)."""
    email = normalize_email(email)
    if Customer.objects.filter(provider=provider, number=number).exists():
        raise Conflict(f"Customer {number} already exists.", field="number")
    if user is None and login:
        if not email:
            raise DomainError("A login needs the customer's e-mail address.", field="email")
        user = user_create(
            email=email,
            name=name,
            provider=provider,
            roles=[Role.CUSTOMER],
            phone=phone,
            address=address,
            created_by=created_by,
        )
    elif user is not None and (user.provider_id != provider.pk or Role.CUSTOMER not in user.role_names):
        raise DomainError("The user must be a customer of this provider.", field="user")
    customer = Customer(
        provider=provider,
        user=user,
        number=number,
        name=name,
        email=email,
        phone=phone,
        address=address,
        national_id=national_id,
        kind=kind,
        organisation=organisation,
        preferred_language=preferred_language,
    )
    customer.full_clean(exclude=["user", "provider"])
    customer.save()
    return customer


@transaction.atomic
def connection_create(
    *,
    customer: Customer,
    number: str,
    connection_type: ConnectionType,
    meter_number: str = "",
    meter_type: str = "",
    division: str = "",
    subdivision: str = "",
    installation_date: Any = None,
    status: str = ConnectionStatus.ACTIVE,
    declared_monthly_income: Decimal | None = None,
) -> ServiceConnection:
    provider_id = customer.provider_id
    if connection_type.provider_id != provider_id:
        raise DomainError("That connection type belongs to another provider.", field="connectionType")
    if ServiceConnection.objects.filter(provider_id=provider_id, number=number).exists():
        raise Conflict(f"Connection {number} already exists.", field="number")
    connection = ServiceConnection(
        provider_id=provider_id,
        customer=customer,
        number=number,
        connection_type=connection_type,
        meter_number=meter_number,
        meter_type=meter_type,
        division=division,
        subdivision=subdivision,
        installation_date=installation_date,
        status=status,
        declared_monthly_income=declared_monthly_income,
    )
    connection.full_clean(exclude=["customer", "provider", "connection_type"])
    connection.save()
    return connection


# Why a connection in each status other than Active takes no reading (its lifecycle steps take theirs).
NO_READINGS = {
    ConnectionStatus.PENDING: "is not connected yet; its first reading is taken when it is connected",
    ConnectionStatus.DISCONNECTED: "is disconnected; it takes no readings",
    ConnectionStatus.CLOSED: "is closed; it takes no readings",
}


def check_takes_readings(connection: ServiceConnection) -> None:
    if connection.status != ConnectionStatus.ACTIVE:
        raise ReadingRefused(f"Connection {connection.number} {NO_READINGS[connection.status]}.")


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
        raise ReadingRefused("Give the reading's time with its time zone.", field="takenAt")
    if taken_at > now:
        raise ReadingRefused(f"The reading is dated in the future ({_when(taken_at)}).", field="takenAt")
    negative = [name for name, value in values.items() if value < 0]
    if negative:
        raise ReadingRefused(f"A register cannot be negative: {', '.join(negative)}.", field=negative[0])
    if before is not None and before.taken_at == taken_at:
        raise ReadingDuplicate(
            f"Connection {connection.number} already has a reading at {_when(taken_at)}.",
            field="takenAt",
        )
    if before is not None and not meter_replaced:
        for name in REGISTERS:
            if values[name] < getattr(before, name):
                raise ReadingRefused(
                    f"The {name.replace('_', ' ')} register ({number(values[name])}) is lower than the reading of "
                    f"{_when(before.taken_at)} ({number(getattr(before, name))}). If the meter was exchanged, "
                    "record the meter exchange (the old meter's final reading and the new one's first).",
                    field=name,
                )
    ceiling = _ceiling(after)
    if ceiling is not None:
        limits, what = ceiling
        for name in REGISTERS:
            if values[name] > limits[name]:
                raise ReadingRefused(
                    f"The {name.replace('_', ' ')} register ({number(values[name])}) is higher than {what} "
                    f"({number(limits[name])}).",
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
        return limits, f"the old meter's final reading at the exchange of {_when(after.taken_at)}"
    if after.meter_replaced:
        return None
    return {name: getattr(after, name) for name in REGISTERS}, (
        f"the later reading of {_when(after.taken_at)}"
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
        raise ValueError("the connection id is missing")
    raw_time = str(row.get("timestamp") or row.get("takenAt") or "").strip()
    try:
        taken_at = datetime.fromisoformat(raw_time)
    except ValueError as exc:
        raise ValueError(f"the timestamp {raw_time!r} is not a date and time like 2024-07-31T23:59") from exc
    if taken_at.year not in READING_YEARS:
        raise ValueError(f"the timestamp {raw_time!r} is not a plausible meter reading time")
    if timezone.is_naive(taken_at):  # the provider's local time, as meters and their files give it
        taken_at = timezone.make_aware(taken_at)
    registers = {}
    for name in REGISTERS:
        raw = row.get(name, 0 if name.startswith("export") else None)
        try:
            registers[name] = Decimal(str(raw))
        except (InvalidOperation, ValueError) as exc:
            raise ValueError(f"{name} {raw!r} is not a number") from exc
        value = registers[name]
        # The registers are NUMERIC(14,4): at most 10 digits before the point and 4 after.
        if not value.is_finite() or abs(value) >= REGISTER_LIMIT or value != value.quantize(KWH_STEP):
            raise ValueError(f"{name} {raw!r} is not a meter reading (up to 10 digits and 4 decimals)")
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
                {"row": index, "connectionId": number, "reason": f"no connection {number}"}
                for index, *_ in connection_rows
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
                f"Give the {role} {name.replace('_', ' ')} register.", field=_exchange_field(prefix, name)
            )
    values = {name: given.get(name) or Decimal("0") for name in REGISTERS}
    for name, value in values.items():
        if value < 0:
            raise ExchangeRefused(
                f"A register cannot be negative: the {role} {name.replace('_', ' ')}.",
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
            f"Connection {connection.number} is {connection.get_status_display().lower()}; only an active "
            "connection's meter is exchanged."
        )
    if timezone.is_naive(at):
        raise ExchangeRefused("Give the exchange's time with its time zone.", field="exchangedAt")
    if at > now:
        raise ExchangeRefused(f"The exchange is dated in the future ({_when(at)}).", field="exchangedAt")
    if not new_meter_number:
        raise ExchangeRefused("Give the new meter's number.", field="newMeterNumber")
    if new_meter_number == connection.meter_number:
        raise ExchangeRefused(
            f"Meter {new_meter_number} is the one being taken out; give the new meter's number.",
            field="newMeterNumber",
        )
    if not reason:
        raise ExchangeRefused("Say why the meter was exchanged.", field="reason")
    final = _registers_of(old_final, "final", "old meter's final")
    first = _registers_of(new_first, "first", "new meter's first")
    readings = MeterReading.objects.filter(connection=connection).select_related("exchange")
    before = readings.filter(taken_at__lte=at).order_by("-taken_at").first()
    after = readings.filter(taken_at__gt=at).order_by("taken_at").first()
    if before is not None and before.taken_at == at:
        what = "a meter exchange" if getattr(before, "exchange", None) else "a reading"
        raise ExchangeDuplicate(
            f"Connection {connection.number} already has {what} at {_when(at)}; an exchange needs "
            "a moment of its own.",
            field="exchangedAt",
        )
    if before is not None:
        for name in REGISTERS:
            if final[name] < getattr(before, name):
                raise ExchangeRefused(
                    f"The old meter's final {name.replace('_', ' ')} register ({number(final[name])}) is lower "
                    f"than the reading of {_when(before.taken_at)} ({number(getattr(before, name))}).",
                    field=_exchange_field("final", name),
                )
    ceiling = _ceiling(after)
    if ceiling is not None:
        limits, what = ceiling
        for name in REGISTERS:
            if first[name] > limits[name]:
                raise ExchangeRefused(
                    f"The new meter's first {name.replace('_', ' ')} register ({number(first[name])}) is higher "
                    f"than {what} ({number(limits[name])}).",
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
