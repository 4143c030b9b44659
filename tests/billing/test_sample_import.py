import json

import pytest
from django.core.management import call_command

from accounts.roles import Role
from billing.importing import sample_import
from billing.models import Customer, MeterReading, ServiceConnection
from providers.importing import price_schedule_import
from tests.factories import UserFactory
from tests.sample_data import SAMPLE

pytestmark = pytest.mark.django_db
SMALL = {
    **SAMPLE,
    "meter_readings": [r for r in SAMPLE["meter_readings"] if r["connection_id"] == "DISCO-RES-1101"],
}


@pytest.fixture
def disco(provider):
    price_schedule_import(provider=provider, data=SAMPLE)
    return provider


def test_the_sample_customers_connections_and_readings_load_through_the_services(disco):
    result = sample_import(provider=disco, data=SMALL)

    assert (result.customers_created, result.connections_created) == (75, 75)
    assert (result.readings.accepted, result.readings.refused) == (len(SMALL["meter_readings"]), [])
    connection = ServiceConnection.objects.get(number="DISCO-RES-1101")
    assert (connection.customer.number, connection.connection_type.code, connection.division) == (
        "LHR-RES-0001",
        "2",
        "Lahore",
    )
    assert not connection.customer.user.has_usable_password()
    assert connection.customer.user.role_names == ["Customer"]


def test_loading_twice_changes_nothing(disco):
    sample_import(provider=disco, data=SMALL)
    before = MeterReading.objects.count()

    again = sample_import(provider=disco, data=SMALL)

    assert (again.customers_created, again.connections_created, again.readings.accepted) == (0, 0, 0)
    assert again.readings.unchanged == before == MeterReading.objects.count()


def test_an_existing_customer_login_is_attached_not_duplicated(disco):
    user = UserFactory(provider=disco, email="aliahmad.101@hmail.com", roles=[Role.CUSTOMER])

    sample_import(provider=disco, data={**SMALL, "meter_readings": []})

    assert Customer.objects.get(number="LHR-RES-0001").user == user


def test_the_command_reports_refused_rows(disco, capsys, tmp_path):
    broken = {
        **SMALL,
        "meter_readings": [{**SMALL["meter_readings"][1], "import_peak": 1}, *SMALL["meter_readings"][:1]],
    }
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(broken))

    call_command("load_customers", disco.code, str(path))

    out = capsys.readouterr().out
    assert (
        f"{disco.code}: 75 customers and 75 connections created; rows: 75 created, 0 unchanged, 0 refused."
        in out
    )
    assert "Readings: 1 recorded, 0 already stored, 1 refused." in out
    assert "row 1 (DISCO-RES-1101): The import peak register (1) is lower than the reading of" in out
