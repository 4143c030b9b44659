"""The twelve bills of disco_expected_examples.json, computed from disco_sample.json, to the cent."""

from datetime import date
from decimal import Decimal

import pytest

from billing.rating import period_readings, rate_period
from billing.selectors import schedule_in_force
from providers.importing import price_schedule_import
from providers.models import ConnectionType
from tests.factories import ProviderFactory
from tests.sample_data import CONNECTION_TYPES, EXAMPLES, SAMPLE, readings_by_connection


@pytest.fixture
def disco(db):
    provider = ProviderFactory(code="DISCO")
    price_schedule_import(provider=provider, data=SAMPLE)
    return provider


@pytest.mark.parametrize(
    "example", EXAMPLES, ids=lambda e: f"{e['connection_id']}-{e['year']}-{e['month']:02d}"
)
def test_the_engine_reproduces_every_figure_of_the_worked_example(disco, example):
    connection_type = ConnectionType.objects.get(
        provider=disco, code=CONNECTION_TYPES[example["connection_id"]]
    )
    issue_date = date.fromisoformat(example["issue_date"])
    schedule = schedule_in_force(provider=disco, day=issue_date).for_type(connection_type.pk)
    start, end = period_readings(
        readings_by_connection()[example["connection_id"]], example["year"], example["month"]
    )

    bill = rate_period(start, end, schedule, late_surcharge_percent=Decimal("10"))

    energy = {trace["bucket"]: trace for trace in bill.trace["energy"]}
    got = {
        "billing_days": f"{bill.trace['billingDays']:.6f}",
        "peak_units": str(energy["peak"]["units"]),
        "off_peak_units": str(energy["off_peak"]["units"]),
        "peak_slab": energy["peak"]["slab"],
        "off_peak_slab": energy["off_peak"]["slab"],
        "peak_charge": str(bill.lines_of("energy")[0].amount),
        "off_peak_charge": str(bill.lines_of("energy")[1].amount),
        "energy_charge": str(bill.energy),
        "taxes": [{"name": line.label, "amount": str(line.amount)} for line in bill.lines_of("tax")],
        "tax_total": str(bill.taxes),
        "fixed": [{"name": line.label, "amount": str(line.amount)} for line in bill.lines_of("fixed")],
        "fixed_total": str(bill.fixed),
        "subsidies": [{"code": line.code, "amount": str(line.amount)} for line in bill.lines_of("subsidy")],
        "subsidy_total": str(bill.subsidies),
        "current_charges": str(bill.current_charges),
        "late_surcharge": str(bill.late_surcharge),
        "payable_after_due": str(bill.payable_after_due),
    }
    assert got == {key: example[key] for key in got}
