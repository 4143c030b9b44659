from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import ConnectionStatus, MeterReading
from billing.services import ReadingDuplicate, ReadingRefused, reading_record, readings_upload
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
D = Decimal


def at(day: int, month: int = 10) -> datetime:
    return datetime(2026, month, day, 23, 59, tzinfo=UTC)


def registers(peak: str, off_peak: str, export_peak: str = "0", export_off_peak: str = "0") -> dict:
    return {
        "import_peak": D(peak),
        "import_off_peak": D(off_peak),
        "export_peak": D(export_peak),
        "export_off_peak": D(export_off_peak),
    }


@pytest.fixture
def connection():
    return ConnectionFactory()


def record(connection, when, values, **options):
    return reading_record(connection=connection, taken_at=when, registers=values, now=NOW, **options)


def test_a_reading_is_recorded_with_its_registers(connection):
    reading = record(connection, at(1), registers("100", "400", "5", "0"))

    assert (reading.import_peak, reading.import_off_peak, reading.export_peak) == (D("100"), D("400"), D("5"))
    assert reading.provider_id == connection.provider_id


def test_a_register_lower_than_the_previous_reading_is_refused(connection):
    record(connection, at(1), registers("100", "400"))

    with pytest.raises(
        ReadingRefused, match=r"import off peak register \(390\) is lower than the reading of"
    ):
        record(connection, at(2), registers("110", "390"))


def test_a_replaced_meter_may_start_again_from_zero(connection):
    record(connection, at(1), registers("100", "400"))

    reading = record(connection, at(2), registers("3", "7"), meter_replaced=True)

    assert reading.meter_replaced is True


def test_a_reading_above_a_later_one_is_refused(connection):
    record(connection, at(1), registers("100", "400"))
    record(connection, at(20), registers("200", "500"))

    with pytest.raises(ReadingRefused, match="higher than the later reading"):
        record(connection, at(10), registers("250", "450"))


def test_a_reading_between_two_others_fits(connection):
    record(connection, at(1), registers("100", "400"))
    record(connection, at(20), registers("200", "500"))

    record(connection, at(10), registers("150", "450"))

    assert MeterReading.objects.count() == 3


def test_a_reading_in_the_future_is_refused(connection):
    with pytest.raises(ReadingRefused, match="dated in the future"):
        record(connection, datetime(2026, 11, 22, tzinfo=UTC), registers("1", "1"))


def test_a_second_reading_at_the_same_time_is_refused(connection):
    record(connection, at(1), registers("100", "400"))

    # Named in the provider's local time (Asia/Karachi, UTC+5), as readings are taken.
    with pytest.raises(ReadingDuplicate, match="already has a reading at 2026-10-02 04:59"):
        record(connection, at(1), registers("100", "400"))


def test_a_disconnected_connection_takes_no_reading():
    connection = ConnectionFactory(status=ConnectionStatus.DISCONNECTED)

    with pytest.raises(ReadingRefused, match="is disconnected"):
        record(connection, at(1), registers("1", "1"))

    assert not MeterReading.objects.exists()


def test_a_negative_register_is_refused(connection):
    with pytest.raises(ReadingRefused, match="cannot be negative: export_peak"):
        record(connection, at(1), registers("1", "1", "-1"))


def test_a_bulk_upload_keeps_good_rows_and_reports_each_refused_one(connection):
    other = ConnectionFactory(provider=connection.provider)
    rows = [
        {
            "connection_id": connection.number,
            "timestamp": "2026-09-30T23:59:00",
            "import_peak": "100",
            "import_off_peak": "400",
        },
        {
            "connection_id": connection.number,
            "timestamp": "2026-10-31T23:59:00",
            "import_peak": "90",
            "import_off_peak": "500",
        },
        {"connection_id": other.number, "timestamp": "yesterday", "import_peak": "1", "import_off_peak": "1"},
        {
            "connection_id": "NOPE-1",
            "timestamp": "2026-10-31T23:59:00",
            "import_peak": "1",
            "import_off_peak": "1",
        },
        {
            "connection_id": other.number,
            "timestamp": "2026-10-31T23:59:00",
            "import_peak": "abc",
            "import_off_peak": "1",
        },
        {
            "connection_id": other.number,
            "timestamp": "2026-10-31T23:59:00",
            "import_peak": "7",
            "import_off_peak": "9",
        },
    ]

    report = readings_upload(provider=connection.provider, rows=rows, recorded_by=None)

    assert (report.accepted, report.unchanged) == (2, 0)
    assert [(r["row"], r["reason"].split(" (")[0]) for r in report.refused] == [
        (2, "The import peak register"),
        (3, "the timestamp 'yesterday' is not a date and time like 2024-07-31T23:59"),
        (4, "no connection NOPE-1"),
        (5, "import_peak 'abc' is not a number"),
    ]


def test_uploading_the_same_file_twice_changes_nothing(connection):
    rows = [
        {
            "connection_id": connection.number,
            "timestamp": "2026-09-30T23:59:00",
            "import_peak": "100",
            "import_off_peak": "4",
        }
    ]
    readings_upload(provider=connection.provider, rows=rows, recorded_by=None)

    again = readings_upload(provider=connection.provider, rows=rows, recorded_by=None)

    assert (again.accepted, again.unchanged, again.refused) == (0, 1, [])
    assert MeterReading.objects.count() == 1


def test_an_upload_cannot_reach_another_providers_connection(connection):
    theirs = ConnectionFactory()
    rows = [
        {
            "connection_id": theirs.number,
            "timestamp": "2026-09-30T23:59:00",
            "import_peak": "1",
            "import_off_peak": "1",
        }
    ]

    report = readings_upload(provider=connection.provider, rows=rows, recorded_by=None)

    assert report.refused == [
        {"row": 1, "connectionId": theirs.number, "reason": f"no connection {theirs.number}"}
    ]
    assert not MeterReading.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("import_peak", "1e20", "import_peak '1e20' is not a meter reading (up to 10 digits and 4 decimals)"),
        ("import_peak", "1.123456789", "import_peak '1.123456789' is not a meter reading"),
        ("import_peak", "NaN", "import_peak 'NaN' is not a meter reading"),
        (
            "timestamp",
            "0001-01-01T00:00",
            "the timestamp '0001-01-01T00:00' is not a plausible meter reading time",
        ),
    ],
)
def test_an_upload_refuses_values_a_meter_cannot_show_and_keeps_the_rest(connection, field, value, reason):
    other = ConnectionFactory(provider=connection.provider)
    good = {
        "connection_id": other.number,
        "timestamp": "2026-09-30T23:59:00",
        "import_peak": "5",
        "import_off_peak": "5",
    }
    bad = {
        "connection_id": connection.number,
        "timestamp": "2026-09-30T23:59:00",
        "import_peak": "5",
        "import_off_peak": "5",
    }

    report = readings_upload(
        provider=connection.provider, rows=[good, {**bad, field: value}], recorded_by=None
    )

    assert report.accepted == 1
    assert [(r["row"], r["reason"].startswith(reason)) for r in report.refused] == [(2, True)]
