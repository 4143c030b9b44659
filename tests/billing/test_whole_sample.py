"""Every connection and month of the sample data rates under the rulebook, not only the twelve examples."""

import calendar
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest

from billing.rating import period_readings, rate_period
from billing.selectors import schedule_in_force
from providers.importing import price_schedule_import
from providers.models import ConnectionType
from tests.sample_data import CONNECTION_TYPES, SAMPLE, readings_by_connection

pytestmark = pytest.mark.django_db
CENT = Decimal("0.01")


def sample_periods():
    readings = readings_by_connection()
    months = sorted({(r.at.year, r.at.month) for rs in readings.values() for r in rs})
    for connection_id, rows in readings.items():
        for year, month in months:
            period = period_readings(rows, year, month)
            if period is not None:
                yield (
                    CONNECTION_TYPES[connection_id],
                    date(year, month, calendar.monthrange(year, month)[1]),
                    period,
                )


def test_every_sample_bill_follows_the_rulebook(provider):
    price_schedule_import(provider=provider, data=SAMPLE)
    type_ids = dict(ConnectionType.objects.filter(provider=provider).values_list("code", "pk"))
    periods = list(sample_periods())
    schedules = {
        (code, day): schedule_in_force(provider=provider, day=day).for_type(type_ids[code])
        for code, day in {(code, day) for code, day, _ in periods}
    }
    for type_code, issue_date, (start, end) in periods:
        bill = rate_period(
            start, end, schedules[(type_code, issue_date)], late_surcharge_percent=Decimal("10")
        )

        days = bill.trace["billingDays"]
        for energy, line in zip(bill.trace["energy"], bill.lines_of("energy"), strict=True):
            average = energy["units"] / (days * 24)
            assert energy["bandLow"] <= average and (
                energy["bandHigh"] is None or average < energy["bandHigh"]
            )
            expected = max(
                energy["minAmount"] + (energy["units"] - energy["minUnits"]) * energy["rate"],
                energy["minAmount"],
            )
            assert line.amount == expected.quantize(CENT, rounding=ROUND_HALF_UP)
        assert [t.amount for t in bill.lines_of("tax")] == [
            (rate * bill.energy).quantize(CENT, rounding=ROUND_HALF_UP)
            for rate in (Decimal("0.17"), Decimal("0.01"))
        ]
        assert bill.fixed == Decimal("160.00")
        assert bill.subsidies <= bill.energy
        assert bill.current_charges == bill.energy + bill.taxes + bill.fixed - bill.subsidies
        assert bill.payable_after_due == bill.current_charges + (bill.current_charges / 10).quantize(
            CENT, rounding=ROUND_HALF_UP
        )

    assert len(periods) == 975
