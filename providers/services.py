from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import Conflict, DomainError, NotFound
from providers.models import (
    Authority,
    Bucket,
    ConnectionType,
    DatedRow,
    FixedCharge,
    Provider,
    SlabMode,
    Subsidy,
    TariffRow,
    TaxRule,
)
from providers.schedule import dated_problems, describe, tariff_problems

PROVIDER_EDITABLE_FIELDS = (
    "name",
    "city",
    "email",
    "phone",
    "is_active",
    "currency",
    "due_days",
    "late_surcharge_percent",
    "reconnection_fee",
    "estimate_missing_readings",
    "allow_overpayment",
)


@transaction.atomic
def provider_create(
    *,
    code: str,
    name: str,
    city: str,
    email: str,
    phone: str = "",
    currency: str = "PKR",
    due_days: int = 10,
    late_surcharge_percent: Decimal = Decimal("10.00"),
    reconnection_fee: Decimal = Decimal("0.00"),
    is_active: bool = True,
    estimate_missing_readings: bool = True,
    allow_overpayment: bool = False,
) -> Provider:
    code = code.strip().upper()
    if Provider.objects.filter(code=code).exists():
        raise Conflict(
            _("A provider with code %(code)s already exists; choose another code.") % {"code": code},
            field="code",
        )
    provider = Provider(
        code=code,
        name=name,
        city=city,
        email=email,
        phone=phone,
        currency=currency.upper(),
        due_days=due_days,
        late_surcharge_percent=late_surcharge_percent,
        reconnection_fee=reconnection_fee,
        is_active=is_active,
        estimate_missing_readings=estimate_missing_readings,
        allow_overpayment=allow_overpayment,
    )
    provider.full_clean()
    provider.save()
    return provider


@transaction.atomic
def provider_onboard(*, kwh_price: Decimal | None, created_by: Any, **fields: Any) -> Provider:
    """A new provider, with its first flat price per kWh from today when one is given."""
    provider = provider_create(**fields)
    if kwh_price is not None:
        provider_price_set(provider=provider, price=kwh_price, changed_by=created_by)
    return provider


@transaction.atomic
def provider_update(*, provider: Provider, **changes: Any) -> Provider:
    unknown = set(changes) - set(PROVIDER_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"provider_update cannot change {sorted(unknown)}")
    provider = Provider.objects.select_for_update().get(pk=provider.pk)
    for field, value in changes.items():
        setattr(provider, field, value)
    provider.full_clean()
    provider.save(update_fields=[*changes, "updated_at"])
    return provider


class ScheduleInvalid(DomainError):
    code = "schedule_invalid"


class ChangeNotAllowed(Conflict):
    code = "price_change_conflict"


def _refuse_if_unsound(problems: list[str]) -> None:
    if problems:
        raise ScheduleInvalid(
            (
                _("The price schedule was not changed: %(problem)s (%(more)s more problems)")
                if len(problems) > 1
                else _("The price schedule was not changed: %(problem)s")
            )
            % {"problem": problems[0], "more": len(problems) - 1},
            problems=problems,
        )


# How far ahead a change may be dated: a typo of 2099 for 2029 would block every change before it.
FURTHEST_AHEAD_DAYS = 3 * 366


def _refuse_unless_upcoming(valid_from: date, today: date) -> None:
    if valid_from < today:
        raise DomainError(
            _(
                "A price change cannot start in the past (%(from)s); bills may already use what is in force. "
                "Choose %(today)s or later."
            )
            % {"from": valid_from, "today": today},
            field="validFrom",
        )
    if (valid_from - today).days > FURTHEST_AHEAD_DAYS:
        raise DomainError(
            _("A change may be dated at most three years ahead; %(from)s is too far.") % {"from": valid_from},
            field="validFrom",
        )


@dataclass(frozen=True)
class TariffSpec:
    """One tariff row of a price change, before it is opened."""

    rate: Decimal
    bucket: str = Bucket.ALL
    band_low: Decimal = Decimal("0")
    band_high: Decimal | None = None
    min_units: Decimal = Decimal("0")
    min_amount: Decimal = Decimal("0")
    slab: int = 1
    mode: str = SlabMode.AVERAGE
    code: str = ""
    description: str = ""


def schedule_lock(provider: Provider) -> Provider:
    """Schedule changes of one provider are serialised on its row, so checks see every other change."""
    return Provider.objects.select_for_update().get(pk=provider.pk)


@transaction.atomic
def tariff_change(
    *,
    provider: Provider,
    connection_type: ConnectionType | None,
    valid_from: date,
    rows: list[TariffSpec],
    changed_by: Any,
    today: date | None = None,
) -> list[TariffRow]:
    """Change the energy rates of one connection type (or of all types) from `valid_from` on.

    Closes the rows in force that day and opens `rows`; earlier rows stay as they were, so bills
    already issued can still be explained. The change may be dated in the future, never in the past.

    A second change dated the same day as the last one corrects it: the rows that change opened are
    closed on the day they started (`valid_to == valid_from`, in force on no day: superseded) and
    kept with who closed them and when. A bill issued in between keeps the superseded rate it was
    rated with (its lines name the row); bills issued after use the correction.
    """
    provider = schedule_lock(provider)
    _refuse_unless_upcoming(valid_from, today or timezone.localdate())
    closing, opening = tariff_change_plan(
        provider=provider, connection_type=connection_type, valid_from=valid_from, rows=rows
    )
    return tariff_change_apply(closing=closing, opening=opening, changed_by=changed_by)


def tariff_change_plan(
    *, provider: Provider, connection_type: ConnectionType | None, valid_from: date, rows: list[TariffSpec]
) -> tuple[list[TariffRow], list[TariffRow]]:
    """The rows a change from `valid_from` closes and the unsaved rows it opens, refused unless the
    schedule stays sound and no later change is scheduled. Nothing is saved; the caller holds the
    provider's lock (`schedule_lock`) and has checked the date."""
    if not rows:
        raise DomainError(_("A price change needs at least one tariff row."), field="rows")
    if connection_type is not None and connection_type.provider_id != provider.pk:
        raise NotFound(_("No such connection type for this provider."), field="connectionType")
    of_type = TariffRow.objects.filter(provider=provider, connection_type=connection_type).exclude(
        valid_to=F("valid_from")
    )
    later = of_type.filter(valid_from__gt=valid_from).order_by("valid_from").first()
    if later is not None:
        raise ChangeNotAllowed(
            _("A change from %(from)s is already scheduled for %(row)s; a new change must start after it.")
            % {"from": later.valid_from, "row": describe(later)},
            field="validFrom",
        )
    closing = list(of_type.in_force_on(valid_from))
    now = timezone.now()  # closed now: a row closed the day it starts is a superseded one (schedule.py)
    for row in closing:
        row.valid_to, row.closed_at = valid_from, now
    opening = [
        TariffRow(provider=provider, connection_type=connection_type, valid_from=valid_from, **vars(spec))
        for spec in rows
    ]
    closing_ids = {row.pk for row in closing}
    others = (
        TariffRow.objects.filter(provider=provider)
        .exclude(pk__in=closing_ids)
        .select_related("connection_type")
    )
    _refuse_if_unsound(tariff_problems([*others, *closing, *opening]))
    return closing, opening


def tariff_change_apply(
    *, closing: list[TariffRow], opening: list[TariffRow], changed_by: Any
) -> list[TariffRow]:
    """Save a planned change (`tariff_change_plan`): who closed and opened the rows."""
    for row in closing:
        row.closed_by = changed_by
        row.save(update_fields=["valid_to", "closed_by", "closed_at", "closed_by_order"])
    for row in opening:
        row.created_by = changed_by
        row.full_clean()
        row.save()
    return opening


def flat_price_in_force(*, provider: Provider, day: date) -> TariffRow | None:
    """The all-types, all-hours row of a provider with one flat price, if it has one on `day`."""
    return (
        TariffRow.objects.in_force_on(day)
        .filter(provider=provider, connection_type=None, bucket=Bucket.ALL, band_low=0, band_high=None)
        .first()
    )


@transaction.atomic
def provider_price_set(
    *, provider: Provider, price: Decimal, changed_by: Any, valid_from: date | None = None
) -> TariffRow:
    """The simple case: one flat price per kWh for every connection and hour, from `valid_from` (today).
    Setting it again for the same day corrects the first (see `tariff_change`)."""
    valid_from = valid_from or timezone.localdate()
    (row,) = tariff_change(
        provider=provider,
        connection_type=None,
        valid_from=valid_from,
        rows=[TariffSpec(rate=price, description="Flat price per kWh")],
        changed_by=changed_by,
    )
    return row


def _tax_key(row: TaxRule) -> tuple:
    return (row.connection_type_id, row.name)


def _subsidy_key(row: Subsidy) -> tuple:
    return (row.connection_type_id, row.code)


DATED_KINDS: dict[type[DatedRow], Callable[[Any], tuple]] = {
    TaxRule: _tax_key,
    FixedCharge: _tax_key,
    Subsidy: _subsidy_key,
}


@transaction.atomic
def schedule_row_add(
    *, row: TaxRule | FixedCharge | Subsidy, created_by: Any, today: date | None = None
) -> DatedRow:
    """Open a tax rule, fixed charge or subsidy (an unsaved instance), refused if it overlaps another."""
    schedule_lock(row.provider)
    _refuse_unless_upcoming(row.valid_from, today or timezone.localdate())
    related = [row.connection_type, getattr(row, "authority", None), getattr(row, "payer", None)]
    if any(other is not None and other.provider_id != row.provider_id for other in related):
        raise NotFound(_("The connection type or authority is not one of this provider's."))
    kind = type(row)
    row.created_by = created_by
    row.full_clean()
    existing = kind.objects.filter(provider=row.provider).select_related("connection_type")
    _refuse_if_unsound(dated_problems([*existing, row], key=DATED_KINDS[kind]))
    row.save()
    return row


@transaction.atomic
def schedule_row_close(
    *, row: DatedRow, valid_to: date, closed_by: Any, today: date | None = None
) -> DatedRow:
    """End a row of the schedule from `valid_to` on (not before today: bills may have used it)."""
    schedule_lock(row.provider)
    row = type(row).objects.select_for_update().get(pk=row.pk)
    today = today or timezone.localdate()
    if valid_to < today or valid_to <= row.valid_from:
        raise DomainError(
            _("Choose an end after %(date)s; earlier bills keep this row.")
            % {"date": max(today, row.valid_from)}
        )
    if row.valid_to is not None and row.valid_to <= valid_to:
        raise ChangeNotAllowed(_("This row already ends on %(date)s.") % {"date": row.valid_to})
    row.valid_to, row.closed_by, row.closed_at = valid_to, closed_by, timezone.now()
    row.save(update_fields=["valid_to", "closed_by", "closed_at"])
    return row


@transaction.atomic
def connection_type_create(
    *, provider: Provider, code: str, description: str, sanctioned_load_kw: Decimal | None = None
) -> ConnectionType:
    if ConnectionType.objects.filter(provider=provider, code=code).exists():
        raise Conflict(
            _("Connection type %(code)s already exists for this provider.") % {"code": code}, field="code"
        )
    row = ConnectionType(
        provider=provider, code=code, description=description, sanctioned_load_kw=sanctioned_load_kw
    )
    row.full_clean()
    row.save()
    return row


@transaction.atomic
def authority_create(*, provider: Provider, code: str, name: str) -> Authority:
    if Authority.objects.filter(provider=provider, code=code).exists():
        raise Conflict(
            _("Authority %(code)s already exists for this provider.") % {"code": code}, field="code"
        )
    row = Authority(provider=provider, code=code, name=name)
    row.full_clean()
    row.save()
    return row
