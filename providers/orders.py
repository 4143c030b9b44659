"""Retroactive price orders: a regulator's order changing energy rates from a day in the past.

An ordinary price change starts today or later (services.tariff_change), so no issued bill is ever
priced again. A regulator's order may instead reach back: an administrator enters it with its reference
as a draft, which changes nothing (the bills it affects are listed, invoicing.services.rebilling), and
confirms it, which changes the schedule from that past day (the rows in force then are closed by the
order, its own rows opened) in the same transaction as the re-billing run of those bills is planned.
The schedule stays a history: the closed rows keep what they were, with who closed them and the order.
"""

from dataclasses import fields
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import Conflict, DomainError
from providers.models import ConnectionType, PriceOrder, PriceOrderStatus, Provider, TariffRow
from providers.services import TariffSpec, schedule_lock, tariff_change_apply, tariff_change_plan

SPEC_FIELDS = {field.name for field in fields(TariffSpec)}
DECIMAL_FIELDS = {field.name for field in fields(TariffSpec) if "Decimal" in str(field.type)}


def spec_values(spec: TariffSpec) -> dict[str, Any]:
    """A tariff row of an order as stored (JSON): decimals as strings, so no digit is lost."""
    return {name: (str(value) if isinstance(value, Decimal) else value) for name, value in vars(spec).items()}


class PriceOrderRefused(DomainError):
    code = "price_order_refused"


def specs_from_values(rows: Any) -> list[TariffSpec]:
    """Tariff rows given as JSON (an administrator's, or an order's stored `rows`): one object per row
    with TariffSpec's fields, at least `rate`."""
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise PriceOrderRefused(
            _('Give the new tariff rows as a list of objects, e.g. [{"rate": "30.00"}].'), field="rows"
        )
    specs = []
    for number, row in enumerate(rows, start=1):
        unknown = sorted(set(row) - SPEC_FIELDS)
        if unknown or "rate" not in row:
            raise PriceOrderRefused(
                (
                    _(
                        "Row %(number)s: each row has a rate and may have %(fields)s; %(unknown)s is not one of them."
                    )
                    if unknown
                    else _("Row %(number)s: each row has a rate and may have %(fields)s.")
                )
                % {
                    "number": number,
                    "fields": ", ".join(sorted(SPEC_FIELDS - {"rate"})),
                    "unknown": ", ".join(unknown),
                },
                field="rows",
            )
        try:
            values = {
                name: Decimal(str(value)) if name in DECIMAL_FIELDS and value is not None else value
                for name, value in row.items()
            }
        except InvalidOperation as problem:
            raise PriceOrderRefused(
                _('Row %(number)s: amounts are numbers, e.g. "30.00".') % {"number": number}, field="rows"
            ) from problem
        specs.append(TariffSpec(**values))
    return specs


def price_order_specs(order: PriceOrder) -> list[TariffSpec]:
    return specs_from_values(order.rows)


def _refuse_unless_past(valid_from: date, today: date) -> None:
    if valid_from >= today:
        raise PriceOrderRefused(
            _(
                "A price order changes prices from a day before today (%(today)s); from %(from)s on, change "
                "the prices in the ordinary way: bills already issued keep theirs."
            )
            % {"today": today, "from": valid_from},
            field="validFrom",
        )


@transaction.atomic
def price_order_enter(
    *,
    provider: Provider,
    reference: str,
    valid_from: date,
    connection_type: ConnectionType | None,
    rows: list[TariffSpec],
    entered_by: Any,
    description: str = "",
    today: date | None = None,
) -> PriceOrder:
    """Enter a regulator's order as a draft: checked as the price change it will make (a sound
    schedule, no change scheduled after it), but nothing changes until it is confirmed."""
    provider = schedule_lock(provider)
    reference = reference.strip()
    if not reference:
        raise PriceOrderRefused(
            _("Give the order's reference, as the regulator wrote it."), field="reference"
        )
    if PriceOrder.objects.filter(provider=provider, reference=reference).exists():
        raise Conflict(
            _("Price order %(reference)s is already entered for %(provider)s.")
            % {"reference": reference, "provider": provider.code},
            field="reference",
        )
    _refuse_unless_past(valid_from, today or timezone.localdate())
    _closing, opening = tariff_change_plan(
        provider=provider, connection_type=connection_type, valid_from=valid_from, rows=rows
    )
    for row in opening:  # a bucket or slab mode the schedule does not know is refused now, not on confirming
        try:
            row.full_clean()
        except ValidationError as invalid:
            raise PriceOrderRefused(" ".join(invalid.messages), field="rows") from invalid
    order = PriceOrder(
        provider=provider,
        reference=reference,
        description=description.strip(),
        valid_from=valid_from,
        connection_type=connection_type,
        rows=[spec_values(spec) for spec in rows],
        entered_by=entered_by,
    )
    order.full_clean()
    order.save()
    return order


def price_order_closing_rows(order: PriceOrder) -> QuerySet[TariffRow]:
    """The tariff rows the order replaces: those it closed, once confirmed; before, those it would
    close (in force on its first day for its connection type, as `tariff_change_plan` finds them)."""
    if order.status == PriceOrderStatus.CONFIRMED:
        return TariffRow.objects.filter(closed_by_order=order)
    return (
        TariffRow.objects.filter(provider_id=order.provider_id, connection_type_id=order.connection_type_id)
        .exclude(valid_to=F("valid_from"))
        .in_force_on(order.valid_from)
    )


def price_order_replaced_rows(order: PriceOrder) -> QuerySet[TariffRow]:
    """The rows the order's rates take the place of: those it closes; for a connection type that had
    no rows of its own, the all-types rows it was rated on (they stay in force for the other types)."""
    closing = price_order_closing_rows(order)
    if order.connection_type_id is None or closing.exists():
        return closing
    return (
        TariffRow.objects.filter(provider_id=order.provider_id, connection_type=None)
        .exclude(valid_to=F("valid_from"))
        .in_force_on(order.valid_from)
    )


def price_order_apply(*, order: PriceOrder, confirmed_by: Any, today: date | None = None) -> PriceOrder:
    """Change the schedule as a draft order says, from its past first day, and mark it confirmed. Part
    of `invoicing.services.rebilling.price_order_confirm`, which re-bills in the same transaction."""
    schedule_lock(order.provider)
    order = (
        PriceOrder.objects.select_for_update(of=("self",))
        .select_related("provider", "connection_type")
        .get(pk=order.pk)
    )
    if order.status != PriceOrderStatus.DRAFT:
        raise Conflict(
            _(
                "Price order %(reference)s was confirmed on %(date)s; its bills are re-issued by its billing run."
            )
            % {"reference": order.reference, "date": f"{order.confirmed_at:%d %b %Y}"},
        )
    _refuse_unless_past(order.valid_from, today or timezone.localdate())
    closing, opening = tariff_change_plan(
        provider=order.provider,
        connection_type=order.connection_type,
        valid_from=order.valid_from,
        rows=price_order_specs(order),
    )
    for row in closing:
        row.closed_by_order = order
    for row in opening:
        row.price_order = order
    tariff_change_apply(closing=closing, opening=opening, changed_by=confirmed_by)
    order.status, order.confirmed_by, order.confirmed_at = (
        PriceOrderStatus.CONFIRMED,
        confirmed_by,
        timezone.now(),
    )
    order.save(update_fields=["status", "confirmed_by", "confirmed_at"])
    return order
