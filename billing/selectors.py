from datetime import date, datetime, time
from decimal import Decimal

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import User
from billing.models import MeterReading, ServiceConnection
from billing.months import next_month, previous_month
from billing.rating import (
    OFF_PEAK,
    PEAK,
    FixedFee,
    RatedBill,
    RatingError,
    Reading,
    Schedule,
    SubsidyRule,
    Tariff,
    Tax,
    Usage,
    rate_usage,
)
from config.errors import DomainError
from providers.models import ConnectionType, FixedCharge, Provider, Subsidy, TariffRow, TaxRule
from providers.tenancy import scope_to_provider


def schedule_in_force(*, provider: Provider, day: date) -> Schedule:
    """The provider's price schedule in force on `day`, as the rating engine's plain values (4 queries)."""
    tariffs = TariffRow.objects.in_force_on(day).filter(provider=provider)
    taxes = TaxRule.objects.in_force_on(day).filter(provider=provider).select_related("authority")
    fixed = FixedCharge.objects.in_force_on(day).filter(provider=provider).select_related("authority")
    subsidies = Subsidy.objects.in_force_on(day).filter(provider=provider).select_related("payer")
    return Schedule(
        tariffs=tuple(
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
            )
            for row in tariffs
        ),
        taxes=tuple(
            Tax(row.name, row.rate, row.authority.code, row.connection_type_id, row.pk) for row in taxes
        ),
        fixed=tuple(
            FixedFee(row.name, row.amount, row.authority.code, row.connection_type_id, row.pk)
            for row in fixed
        ),
        subsidies=tuple(
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
            )
            for row in subsidies
        ),
    )


def connection_list_for(*, user: User) -> QuerySet[ServiceConnection]:
    return scope_to_provider(ServiceConnection.objects.all(), user).select_related(
        "customer", "connection_type", "provider"
    )


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
    if isinstance(connections, range):
        of_connections = {"connection_id__gte": connections.start, "connection_id__lt": connections.stop}
    else:
        of_connections = {"connection_id__in": connections}
    rows = (
        MeterReading.objects.filter(**of_connections, taken_at__gte=since, taken_at__lt=until)
        .order_by()
        .values_list("connection_id", "taken_at", *MeterReading.REGISTERS)
    )
    zone = timezone.get_current_timezone()
    readings: dict[int, list[Reading]] = {}
    for connection_id, taken_at, import_peak, import_off_peak, export_peak, export_off_peak in rows:
        readings.setdefault(connection_id, []).append(
            Reading(taken_at.astimezone(zone), import_peak, import_off_peak, export_peak, export_off_peak)
        )
    return readings


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
        raise DomainError(f"No estimate: {problem}") from problem
