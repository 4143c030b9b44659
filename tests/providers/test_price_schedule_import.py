import copy
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from providers.importing import ImportMismatch, price_schedule_import
from providers.models import ConnectionType, FixedCharge, Subsidy, TariffRow, TaxRule
from providers.services import ScheduleInvalid
from tests.sample_data import SAMPLE, SAMPLE_PATH

pytestmark = pytest.mark.django_db


@pytest.fixture
def sample() -> dict:
    return copy.deepcopy(SAMPLE)


def counts(provider) -> tuple[int, ...]:
    return tuple(
        model.objects.filter(provider=provider).count()
        for model in (ConnectionType, TariffRow, TaxRule, FixedCharge, Subsidy)
    )


def test_the_sample_company_s_whole_schedule_loads(provider, sample):
    price_schedule_import(provider=provider, data=sample)

    assert counts(provider) == (33, 68, 34, 34, 2)
    slab2 = TariffRow.objects.get(provider=provider, code="T-Res-0007")
    assert (slab2.bucket, slab2.band_low, slab2.band_high, slab2.rate) == (
        "peak",
        Decimal("0.09"),
        None,
        Decimal("41"),
    )
    assert (slab2.min_units, slab2.min_amount) == (Decimal("63"), Decimal("1953.00"))
    gst = TaxRule.objects.get(provider=provider, connection_type__code="2", name="GST")
    assert (gst.rate, gst.authority.name) == (Decimal("0.17"), "Federal Board of Revenue")


def test_inclusive_end_dates_still_apply_on_their_last_day(provider, sample):
    price_schedule_import(provider=provider, data=sample)

    in_force = TariffRow.objects.in_force_on(date(2024, 12, 31)).filter(provider=provider)
    after = TariffRow.objects.in_force_on(date(2025, 1, 1)).filter(provider=provider)
    assert (in_force.count(), after.count()) == (68, 0)


def test_loading_twice_changes_nothing(provider, sample):
    price_schedule_import(provider=provider, data=sample)
    before = list(TariffRow.objects.values_list("pk", "rate", "valid_to"))

    result = price_schedule_import(provider=provider, data=sample)

    assert result.created == {}
    assert sum(result.unchanged.values()) == 175
    assert list(TariffRow.objects.values_list("pk", "rate", "valid_to")) == before


def test_a_file_that_changes_a_stored_price_is_refused_whole(provider, sample):
    price_schedule_import(provider=provider, data=sample)
    changed = copy.deepcopy(sample)
    changed["tariffs"][0]["rate_per_unit"] = 99
    changed["connection_types"].append({"code": 999, "description": "New", "sanctioned_load_kw": 1})

    with pytest.raises(ImportMismatch, match="differs from the file in rate"):
        price_schedule_import(provider=provider, data=changed)

    assert not ConnectionType.objects.filter(code="999").exists()


def test_a_file_with_a_gap_between_slabs_is_refused_and_nothing_is_loaded(provider, sample):
    broken = copy.deepcopy(sample)
    broken["tariffs"][2]["threshold_low_per_hour"] = 0.1  # slab 2 no longer meets slab 1 at 0.09

    with pytest.raises(ScheduleInvalid, match=r"nothing covers 0\.09 to 0\.1 "):
        price_schedule_import(provider=provider, data=broken)

    assert counts(provider) == (0, 0, 0, 0, 0)


def test_the_command_reports_what_it_loaded(provider, capsys):
    call_command("load_price_schedule", provider.code, str(SAMPLE_PATH))
    call_command("load_price_schedule", provider.code, str(SAMPLE_PATH))

    out = capsys.readouterr().out.splitlines()
    assert (
        out[0]
        == f"{provider.code}: created 33 connection type, 4 authority, 68 tariff, 34 tax, 34 fixed charge, 2 subsidy; 0 rows already loaded."
    )
    assert out[1] == f"{provider.code}: created nothing; 175 rows already loaded."


def test_the_command_names_an_unknown_provider():
    with pytest.raises(CommandError, match="No provider with code NOPE"):
        call_command("load_price_schedule", "NOPE", str(SAMPLE_PATH))
