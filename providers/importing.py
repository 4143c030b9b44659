"""Loading a provider's price schedule from a JSON file shaped like `disco_sample.json`.

All or nothing, and idempotent: a row already stored with the same values is left alone, a row
stored with different values stops the import (prices change through `tariff_change`, which keeps
history). The file's end dates are inclusive; stored `valid_to` is the day after. The file writes
an open top band as 999999.9999; it is stored as open.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from config.errors import DomainError
from providers.models import (
    Authority,
    Bucket,
    ConnectionType,
    DatedRow,
    FixedCharge,
    Provider,
    Subsidy,
    SubsidyBasis,
    TariffRow,
    TaxRule,
)
from providers.schedule import dated_problems, tariff_problems
from providers.services import DATED_KINDS, ScheduleInvalid

OPEN_BAND_SENTINEL = Decimal("999999.9999")
TOU_BUCKETS = {"peak": Bucket.PEAK, "off_peak": Bucket.OFF_PEAK, "all": Bucket.ALL}


class ImportMismatch(DomainError):
    code = "import_mismatch"


@dataclass
class ImportResult:
    created: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, *, created: bool) -> None:
        bucket = self.created if created else self.unchanged
        bucket[kind] = bucket.get(kind, 0) + 1


def _decimal(value: Any) -> Decimal:
    # json gives floats for numbers; their shortest repr is the decimal the file wrote.
    return Decimal(str(value))


def _optional_decimal(value: Any) -> Decimal | None:
    return None if value is None else _decimal(value)


def _band_high(value: Any) -> Decimal | None:
    if value is None:
        return None
    high = _decimal(value)
    return None if high >= OPEN_BAND_SENTINEL else high


def _valid_to(end: str | None) -> date | None:
    return date.fromisoformat(end) + timedelta(days=1) if end else None


def _store(
    result: ImportResult, kind: str, model: type, lookup: dict[str, Any], values: dict[str, Any]
) -> Any:
    """Create the row, or check the stored one has the same values."""
    stored = model.objects.filter(**lookup).first()
    if stored is None:
        row = model(**lookup, **values)
        row.full_clean()
        row.save()
        result.count(kind, created=True)
        return row
    differing = [name for name, value in values.items() if getattr(stored, name) != value]
    if differing:
        raise ImportMismatch(
            _(
                "The stored %(kind)s %(lookup)s differs from the file in %(fields)s. Change prices with a "
                "price change, which keeps the history."
            )
            % {"kind": kind, "lookup": lookup, "fields": ", ".join(differing)},
            kind=kind,
            fields=differing,
        )
    result.count(kind, created=False)
    return stored


@transaction.atomic
def price_schedule_import(*, provider: Provider, data: dict[str, Any]) -> ImportResult:
    provider = Provider.objects.select_for_update().get(pk=provider.pk)
    result = ImportResult()
    types = {
        str(item["code"]): _store(
            result,
            "connection type",
            ConnectionType,
            {"provider": provider, "code": str(item["code"])},
            {
                "description": item["description"],
                "sanctioned_load_kw": _optional_decimal(item.get("sanctioned_load_kw")),
            },
        )
        for item in data.get("connection_types", [])
    }
    bodies = [(a["authority_id"], a["name"]) for a in data.get("tax_authorities", [])]
    bodies += [(s["provider_id"], s["name"]) for s in data.get("subsidy_providers", [])]
    authorities = {
        code: _store(result, "authority", Authority, {"provider": provider, "code": code}, {"name": name})
        for code, name in dict(bodies).items()
    }

    def connection_type(code: Any) -> ConnectionType | None:
        if code is None:
            return None
        if str(code) not in types:
            raise ImportMismatch(
                _("Connection type %(code)s is used but not listed in connection_types.") % {"code": code}
            )
        return types[str(code)]

    def dated(item: dict[str, Any]) -> dict[str, Any]:
        return {
            "provider": provider,
            "connection_type": connection_type(item.get("connection_type_code")),
            "valid_from": date.fromisoformat(item["start_date"]),
        }

    for item in data.get("tariffs", []):
        _store(
            result,
            "tariff",
            TariffRow,
            {**dated(item), "code": item["code"]},
            {
                "valid_to": _valid_to(item.get("end_date")),
                "description": item.get("description", ""),
                "bucket": TOU_BUCKETS[item.get("tou") or "all"],
                "slab": item.get("slab") or 1,
                "band_low": _decimal(item.get("threshold_low_per_hour") or 0),
                "band_high": _band_high(item.get("threshold_high_per_hour")),
                "rate": _decimal(item["rate_per_unit"]),
                "min_units": _decimal(item.get("min_unit") or 0),
                "min_amount": _decimal(item.get("min_amount") or 0),
            },
        )
    for item in data.get("tax_rates", []):
        _store(
            result,
            "tax",
            TaxRule,
            {**dated(item), "name": item["tax_type"]},
            {
                "valid_to": _valid_to(item.get("end_date")),
                "authority": authorities[item["authority_id"]],
                "rate": _decimal(item["rate"]),
            },
        )
    for item in data.get("fixed_charges", []):
        _store(
            result,
            "fixed charge",
            FixedCharge,
            {**dated(item), "name": item["charge_type"]},
            {
                "valid_to": _valid_to(item.get("end_date")),
                "authority": authorities[item["authority_id"]],
                "amount": _decimal(item["fixed_fee"]),
            },
        )
    for item in data.get("subsidies", []):
        income_based = item.get("income_ceiling") is not None
        _store(
            result,
            "subsidy",
            Subsidy,
            {**dated(item), "code": item["code"]},
            {
                "valid_to": _valid_to(item.get("end_date")),
                "description": item.get("description", ""),
                "payer": authorities[item["provider_id"]],
                "basis": SubsidyBasis.INCOME if income_based else SubsidyBasis.USAGE,
                "band_low": None if income_based else _decimal(item.get("threshold_low_per_hour") or 0),
                "band_high": None if income_based else _band_high(item.get("threshold_high_per_hour")),
                "income_ceiling": _optional_decimal(item.get("income_ceiling")),
                "rate_per_unit": _optional_decimal(item.get("rate_per_unit")),
                "percent": _optional_decimal(item.get("percent")),
            },
        )
    _check(provider)
    return result


def _check(provider: Provider) -> None:
    checks: list[tuple[type[DatedRow], Callable]] = [(TariffRow, tariff_problems)]
    checks += [(kind, lambda rows, key=key: dated_problems(rows, key)) for kind, key in DATED_KINDS.items()]
    problems = [
        problem
        for kind, check in checks
        for problem in check(kind.objects.filter(provider=provider).select_related("connection_type"))
    ]
    if problems:
        raise ScheduleInvalid(
            _("The file's schedule cannot bill: %(problem)s") % {"problem": problems[0]}, problems=problems
        )
