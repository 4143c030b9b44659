from datetime import date

from billing.rating import FixedFee, Schedule, SubsidyRule, Tariff, Tax
from providers.models import FixedCharge, Provider, Subsidy, TariffRow, TaxRule


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
