from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.permissions import scope_to_reach
from billing.models import ConnectionTypeChange, Customer, MeterExchange, MeterReading, ServiceConnection
from billing.months import next_month, previous_month
from billing.periods import TypeChange
from billing.rating import (
    OFF_PEAK,
    PEAK,
    FixedFee,
    MeterChange,
    RatedBill,
    RatingError,
    Reading,
    Schedule,
    ScheduleHistory,
    SubsidyRule,
    Tariff,
    Tax,
    Usage,
    rate_usage,
)
from config.errors import DomainError
from providers.models import (
    ConnectionType,
    DatedRowQuerySet,
    FixedCharge,
    Provider,
    Subsidy,
    TariffRow,
    TaxRule,
)
from providers.tenancy import scope_to_provider


def schedule_in_force(*, provider: Provider, day: date) -> Schedule:
    """The provider's price schedule in force on `day`, as the rating engine's plain values (4 queries)."""
    return Schedule(*_engine_rows(provider, lambda rows: rows.in_force_on(day)))


def schedule_history(*, provider: Provider, since: date, until: date) -> ScheduleHistory:
    """The provider's rows in force on any day from `since` to `until`, with their dates: what rates
    periods within those days, each day on its own rows (4 queries)."""
    return ScheduleHistory(*_engine_rows(provider, lambda rows: rows.in_force_between(since, until)))


def _engine_rows(provider: Provider, chosen: Callable[[DatedRowQuerySet], DatedRowQuerySet]) -> tuple:
    """The provider's chosen rows of each kind (tariffs, taxes, fixed charges, subsidies) as the
    engine's values."""
    tariffs = chosen(TariffRow.objects.filter(provider=provider))
    taxes = chosen(TaxRule.objects.filter(provider=provider)).select_related("authority")
    fixed = chosen(FixedCharge.objects.filter(provider=provider)).select_related("authority")
    subsidies = chosen(Subsidy.objects.filter(provider=provider)).select_related("payer")
    return (
        tuple(
            Tariff(
                rate=row.rate,
                bucket=row.bucket,
                band_low=row.band_low,
                band_high=row.band_high,
                min_units=row.min_units,
                min_amount=row.min_amount,
                slab=row.slab,
                mode=row.mode,
                code=row.code,
                connection_type=row.connection_type_id,
                id=row.pk,
                valid_from=row.valid_from,
                valid_to=row.valid_to,
            )
            for row in tariffs
        ),
        tuple(
            Tax(
                row.name,
                row.rate,
                row.authority.code,
                row.connection_type_id,
                row.pk,
                row.valid_from,
                row.valid_to,
            )
            for row in taxes
        ),
        tuple(
            FixedFee(
                row.name,
                row.amount,
                row.authority.code,
                row.connection_type_id,
                row.pk,
                row.valid_from,
                row.valid_to,
            )
            for row in fixed
        ),
        tuple(
            SubsidyRule(
                code=row.code,
                rate_per_unit=row.rate_per_unit,
                percent=row.percent,
                band_low=row.band_low,
                band_high=row.band_high,
                income_ceiling=row.income_ceiling,
                payer=row.payer.code,
                connection_type=row.connection_type_id,
                id=row.pk,
                valid_from=row.valid_from,
                valid_to=row.valid_to,
            )
            for row in subsidies
        ),
    )


def customer_language_of(user: User) -> str | None:
    """The language a customer with this login chose for their e-mails; None for anyone else."""
    return Customer.objects.filter(user=user).values_list("preferred_language", flat=True).first()


def customer_list_for(*, user: User) -> QuerySet[Customer]:
    """The caller's provider's customers, each with how many connections it has."""
    return (
        scope_to_provider(Customer.objects.all(), user)
        .select_related("provider")
        .annotate(connection_count=Count("connections"))
    )


def customer_get_for(*, user: User, customer_id: int) -> Customer:
    """One customer of the caller's provider (404 for any other), with its connections."""
    connections = ServiceConnection.objects.select_related("connection_type").order_by("number")
    return get_object_or_404(
        customer_list_for(user=user).prefetch_related(Prefetch("connections", queryset=connections)),
        pk=customer_id,
    )


# --- a customer's own account (SELF reach): their customer record, connections and readings ------------


def own_customer_for(*, user: User, perm: str = "billing.change_own_customer") -> Customer:
    """The customer account of the signed-in customer; 404 for anyone whose role has no such reach."""
    accounts = scope_to_reach(
        Customer.objects.select_related("user"), user=user, perm=perm, account_field="user"
    )
    return get_object_or_404(accounts)


def own_connections_for(*, user: User) -> QuerySet[ServiceConnection]:
    """Every connection of the signed-in customer's account, billed yet or not."""
    return scope_to_reach(
        ServiceConnection.objects.select_related("connection_type"),
        user=user,
        perm="billing.view_own_serviceconnection",
        account_field="customer__user",
    ).order_by("number")


def own_connection_get_for(*, user: User, connection_id: int) -> ServiceConnection:
    return get_object_or_404(own_connections_for(user=user), pk=connection_id)


def with_last_reading(connections: QuerySet[ServiceConnection]) -> list[ServiceConnection]:
    """The connections, each with its latest reading (`last_reading`, None without one): two queries."""
    latest = MeterReading.objects.filter(connection=OuterRef("pk")).order_by("-taken_at").values("pk")[:1]
    rows = list(connections.annotate(last_reading_id=Subquery(latest)))
    readings = MeterReading.objects.in_bulk([row.last_reading_id for row in rows if row.last_reading_id])
    for row in rows:
        row.last_reading = readings.get(row.last_reading_id)
    return rows


def connection_list_for(*, user: User) -> QuerySet[ServiceConnection]:
    return scope_to_provider(ServiceConnection.objects.all(), user).select_related(
        "customer", "connection_type", "provider", "income_recorded_by"
    )


def type_changes_of(*, connections: list[int] | range) -> dict[int, list[TypeChange]]:
    """Each connection's changes of type, in date order (1 query; a connection has a handful at most)."""
    rows = (
        ConnectionTypeChange.objects.filter(**_of_connections(connections))
        .order_by("connection_id", "effective_from")
        .values_list(
            "connection_id",
            "effective_from",
            "from_type_id",
            "to_type_id",
            "from_type__code",
            "to_type__code",
        )
    )
    changes: dict[int, list[TypeChange]] = {}
    for connection_id, *change in rows:
        changes.setdefault(connection_id, []).append(TypeChange(*change))
    return changes


def meter_exchange_list_for(*, user: User) -> QuerySet[MeterExchange]:
    return scope_to_provider(MeterExchange.objects.all(), user).select_related("connection", "recorded_by")


def connection_get_for(*, user: User, connection_id: int) -> ServiceConnection:
    return get_object_or_404(connection_list_for(user=user), pk=connection_id)


def period_span(year: int, month: int) -> tuple[datetime, datetime]:
    """From the start of the month before to the end of the month, local time: a bill's readings."""
    first = date(year, month, 1)
    since, until = previous_month(first), next_month(first)
    zone = timezone.get_current_timezone()
    return datetime.combine(since, time(), zone), datetime.combine(until, time(), zone)


def readings_for_period(*, connections: list[int] | range, year: int, month: int) -> dict[int, list[Reading]]:
    """Each connection's readings of the month and the month before, as the engine's values (1 query).

    `connections`: a list of ids, or a `range` of them (a billing run's chunk), read as an id range so
    the (connection, time) index serves it however many readings the table holds.
    """
    since, until = period_span(year, month)
    rows = (
        MeterReading.objects.filter(**_of_connections(connections), taken_at__gte=since, taken_at__lt=until)
        .order_by()
        .values_list("connection_id", "taken_at", *MeterReading.REGISTERS, "meter_replaced")
    )
    zone = timezone.get_current_timezone()
    readings: dict[int, list[Reading]] = {}
    for connection_id, taken_at, import_peak, import_off_peak, export_peak, export_off_peak, replaced in rows:
        readings.setdefault(connection_id, []).append(
            Reading(
                taken_at.astimezone(zone),
                import_peak,
                import_off_peak,
                export_peak,
                export_off_peak,
                replaced,
            )
        )
    return readings


def _of_connections(connections: list[int] | range) -> dict[str, Any]:
    if isinstance(connections, range):
        return {"connection_id__gte": connections.start, "connection_id__lt": connections.stop}
    return {"connection_id__in": connections}


def meter_changes_between(
    *, connections: list[int] | range, since: datetime, until: datetime
) -> dict[int, list[MeterChange]]:
    """Each connection's meter exchanges after `since` and before `until`, in time order (1 query)."""
    rows = (
        MeterExchange.objects.filter(
            **_of_connections(connections), exchanged_at__gt=since, exchanged_at__lt=until
        )
        .order_by("connection_id", "exchanged_at")
        .values_list(
            "connection_id",
            "exchanged_at",
            *MeterExchange.FINAL_REGISTERS,
            *MeterExchange.FIRST_REGISTERS,
            "old_meter_number",
            "new_meter_number",
        )
    )
    zone = timezone.get_current_timezone()
    changes: dict[int, list[MeterChange]] = {}
    for connection_id, exchanged_at, *registers, old_meter, new_meter in rows:
        at = exchanged_at.astimezone(zone)
        final = Reading(at, *registers[:4])
        first = Reading(at, *registers[4:], replaced=True)
        changes.setdefault(connection_id, []).append(MeterChange(final, first, old_meter, new_meter))
    return changes


def usage_estimate(
    *,
    provider: Provider,
    connection_type: ConnectionType,
    peak_kwh: Decimal,
    off_peak_kwh: Decimal,
    days: Decimal,
) -> RatedBill:
    """What a month of the given usage would cost on today's prices (the customer's calculator)."""
    schedule = schedule_in_force(provider=provider, day=timezone.localdate()).for_type(connection_type.pk)
    usage = Usage(
        days=days, units={PEAK: peak_kwh, OFF_PEAK: off_peak_kwh}, total_import=peak_kwh + off_peak_kwh
    )
    try:
        return rate_usage(usage, schedule, late_surcharge_percent=provider.late_surcharge_percent)
    except RatingError as problem:
        raise DomainError(_("No estimate: %(problem)s") % {"problem": problem}) from problem
