from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from config.errors import DomainError
from providers.models import Bucket, TariffRow, TaxRule
from providers.services import (
    ChangeNotAllowed,
    ScheduleInvalid,
    TariffSpec,
    authority_create,
    flat_price_in_force,
    provider_price_set,
    schedule_row_add,
    tariff_change,
)
from tests.factories import ConnectionTypeFactory, ProviderFactory, UserFactory

pytestmark = pytest.mark.django_db
TODAY = date(2026, 11, 21)
D = Decimal


@pytest.fixture(autouse=True)
def _today_is_fixed(time_machine):
    """A change may not start before today: these tests read the schedule as of TODAY."""
    time_machine.move_to(datetime.combine(TODAY, time(12), tzinfo=UTC), tick=False)


def two_slabs(bucket: str, split: str, low_rate: str, high_rate: str) -> list[TariffSpec]:
    return [
        TariffSpec(bucket=bucket, band_high=D(split), rate=D(low_rate), slab=1),
        TariffSpec(bucket=bucket, band_low=D(split), rate=D(high_rate), slab=2),
    ]


@pytest.fixture
def officer(provider):
    return UserFactory(provider=provider)


@pytest.fixture
def residential(provider):
    return ConnectionTypeFactory(provider=provider, code="1")


def change(provider, connection_type, valid_from, rows, by):
    return tariff_change(
        provider=provider,
        connection_type=connection_type,
        valid_from=valid_from,
        rows=rows,
        changed_by=by,
        today=TODAY,
    )


def test_a_change_closes_the_rows_in_force_and_opens_new_ones(provider, residential, officer):
    first = change(provider, residential, TODAY, two_slabs(Bucket.ALL, "0.5", "20", "30"), officer)
    second = change(
        provider, residential, date(2027, 1, 1), two_slabs(Bucket.ALL, "0.5", "22", "33"), officer
    )

    for row in first:
        row.refresh_from_db()
    assert [(r.valid_from, r.valid_to, r.closed_by) for r in first] == [
        (TODAY, date(2027, 1, 1), officer)
    ] * 2
    assert [(r.rate, r.valid_to, r.created_by) for r in second] == [
        (D("22"), None, officer),
        (D("33"), None, officer),
    ]


def test_history_after_several_changes_keeps_every_price(provider, officer):
    for day, price in [(TODAY, "20"), (date(2027, 1, 1), "21"), (date(2027, 7, 1), "23.5")]:
        provider_price_set(provider=provider, price=D(price), changed_by=officer, valid_from=day)

    history = list(
        TariffRow.objects.filter(provider=provider)
        .order_by("valid_from")
        .values_list("valid_from", "valid_to", "rate")
    )
    assert history == [
        (TODAY, date(2027, 1, 1), D("20")),
        (date(2027, 1, 1), date(2027, 7, 1), D("21")),
        (date(2027, 7, 1), None, D("23.5")),
    ]


def test_the_price_in_force_on_a_date_follows_the_history(provider, officer):
    provider_price_set(provider=provider, price=D("20"), changed_by=officer, valid_from=TODAY)
    provider_price_set(provider=provider, price=D("25"), changed_by=officer, valid_from=date(2027, 3, 1))

    assert flat_price_in_force(provider=provider, day=date(2027, 2, 28)).rate == D("20")
    assert flat_price_in_force(provider=provider, day=date(2027, 3, 1)).rate == D("25")
    assert flat_price_in_force(provider=provider, day=date(2026, 11, 20)) is None


def test_a_future_dated_change_leaves_today_s_price_in_force(provider, officer):
    provider_price_set(provider=provider, price=D("20"), changed_by=officer, valid_from=TODAY)
    provider_price_set(provider=provider, price=D("30"), changed_by=officer, valid_from=date(2027, 6, 1))

    assert flat_price_in_force(provider=provider, day=TODAY).rate == D("20")


def test_a_change_cannot_be_dated_in_the_past(provider, residential, officer):
    with pytest.raises(DomainError, match="cannot start in the past"):
        change(provider, residential, date(2026, 11, 20), [TariffSpec(rate=D("20"))], officer)


def test_a_change_before_one_already_scheduled_is_refused(provider, residential, officer):
    change(provider, residential, date(2027, 1, 1), [TariffSpec(rate=D("20"))], officer)

    with pytest.raises(ChangeNotAllowed, match="already scheduled"):
        change(provider, residential, TODAY, [TariffSpec(rate=D("19"))], officer)


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (
            [TariffSpec(band_high=D("0.5"), rate=D("20")), TariffSpec(band_low=D("0.4"), rate=D("30"))],
            "overlaps",
        ),
        (
            [TariffSpec(band_high=D("0.5"), rate=D("20")), TariffSpec(band_low=D("0.6"), rate=D("30"))],
            "nothing covers 0.5 to 0.6",
        ),
        ([TariffSpec(band_low=D("0.1"), rate=D("20"))], "lowest band must start at 0"),
        ([TariffSpec(band_high=D("0.5"), rate=D("20"))], "top band must be open"),
        ([TariffSpec(rate=D("-1"))], "rate must not be negative"),
        ([TariffSpec(rate=D("5"), min_amount=D("-10"))], "min amount must not be negative"),
        (two_slabs(Bucket.PEAK, "0.1", "30", "40"), "none for off_peak"),
        (
            [
                TariffSpec(band_high=D("100"), rate=D("5")),
                TariffSpec(band_low=D("100"), rate=D("7"), mode="graduated"),
            ],
            "mixes average-based and graduated slabs",
        ),
        (
            [
                TariffSpec(rate=D("5")),
                *two_slabs(Bucket.PEAK, "0.1", "3", "4"),
                TariffSpec(bucket=Bucket.OFF_PEAK, rate=D("2")),
            ],
            "both all-hours and peak/off-peak",
        ),
    ],
)
def test_an_unsound_schedule_is_refused_naming_the_row_and_nothing_is_saved(
    provider, residential, officer, rows, problem
):
    with pytest.raises(ScheduleInvalid) as refused:
        change(provider, residential, TODAY, rows, officer)

    assert problem in " ".join(refused.value.extra["problems"])
    assert "type 1" in refused.value.detail
    assert not TariffRow.objects.exists()


def test_a_refused_change_leaves_the_rows_in_force_open(provider, residential, officer):
    (current,) = change(provider, residential, TODAY, [TariffSpec(rate=D("20"))], officer)

    with pytest.raises(ScheduleInvalid):
        change(provider, residential, date(2027, 1, 1), [TariffSpec(band_low=D("1"), rate=D("20"))], officer)

    current.refresh_from_db()
    assert current.valid_to is None


def test_time_of_use_rates_with_two_slabs_each_are_accepted(provider, residential, officer):
    rows = [*two_slabs(Bucket.PEAK, "0.09", "21", "31"), *two_slabs(Bucket.OFF_PEAK, "0.33", "14", "21")]

    opened = change(provider, residential, TODAY, rows, officer)

    assert sorted((r.bucket, r.slab) for r in opened) == [
        ("off_peak", 1),
        ("off_peak", 2),
        ("peak", 1),
        ("peak", 2),
    ]


def test_a_connection_type_of_another_provider_is_not_found(provider, officer):
    theirs = ConnectionTypeFactory(provider=ProviderFactory())

    with pytest.raises(DomainError, match="No such connection type"):
        change(provider, theirs, TODAY, [TariffSpec(rate=D("20"))], officer)


def test_a_change_dated_more_than_three_years_ahead_is_refused(provider, residential, officer):
    with pytest.raises(DomainError, match="at most three years ahead"):
        change(provider, residential, date(2099, 1, 1), [TariffSpec(rate=D("20"))], officer)


def test_a_tax_rule_cannot_be_backdated(provider, officer):
    authority = authority_create(provider=provider, code="FBR", name="Federal Board of Revenue")
    backdated = TaxRule(
        provider=provider, name="GST", authority=authority, rate=D("0.17"), valid_from=date(2000, 1, 1)
    )

    with pytest.raises(DomainError, match="cannot start in the past"):
        schedule_row_add(row=backdated, created_by=officer, today=TODAY)

    assert not TaxRule.objects.exists()
