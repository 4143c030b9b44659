from datetime import date, timedelta
from typing import Any

from django.db.models import Max, QuerySet
from django.shortcuts import get_object_or_404

from providers.models import (
    Authority,
    ConnectionType,
    DatedRow,
    FixedCharge,
    Provider,
    Subsidy,
    TariffRow,
    TaxRule,
)
from providers.tenancy import scope_to_provider


def provider_list_for(*, user: Any) -> QuerySet[Provider]:
    return scope_to_provider(Provider.objects.all(), user, field="pk")


def provider_get_for(*, user: Any, provider_id: int) -> Provider:
    return get_object_or_404(provider_list_for(user=user), pk=provider_id)


def schedule_rows(model: type[DatedRow], *, provider: Provider, on: date | None = None) -> QuerySet[DatedRow]:
    """A provider's rows of one kind (the rows in force on `on`, when given), with their relations."""
    related = {
        TariffRow: ("connection_type", "created_by", "closed_by"),
        TaxRule: ("connection_type", "authority", "created_by", "closed_by"),
        FixedCharge: ("connection_type", "authority", "created_by", "closed_by"),
        Subsidy: ("connection_type", "payer", "created_by", "closed_by"),
    }[model]
    rows = model.objects.filter(provider=provider).select_related(*related)
    return rows.in_force_on(on) if on else rows


def schedule_last_day(*, provider: Provider) -> date | None:
    """The last day any energy rate of `provider` was in force (None: none ever was, or one still is)."""
    rows = TariffRow.objects.filter(provider=provider)
    if rows.filter(valid_to__isnull=True).exists():
        return None
    last_end = rows.aggregate(last=Max("valid_to"))["last"]
    return last_end - timedelta(days=1) if last_end else None


def connection_types_of(*, provider: Provider) -> QuerySet[ConnectionType]:
    return ConnectionType.objects.filter(provider=provider)


def authorities_of(*, provider: Provider) -> QuerySet[Authority]:
    return Authority.objects.filter(provider=provider)


def pricing_history_for(*, user: Any) -> QuerySet[TariffRow]:
    """Every tariff row the caller may audit, newest change first."""
    return (
        scope_to_provider(TariffRow.objects.all(), user)
        .select_related("provider", "connection_type", "created_by", "closed_by")
        .order_by("-valid_from", "-pk")
    )
