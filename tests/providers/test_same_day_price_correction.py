"""Updating the kWh price again the same day corrects it: the row the first update opened is closed the
day it started (superseded, in force on no day) and kept in the history beside its replacement. Bills
issued in between keep the price they were rated with; bills issued after use the correction."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import IntegrityError
from django.test import Client

from accounts.roles import Role
from accounts.sessions import SESSION_ROLE_KEY
from providers.models import Bucket, TariffRow
from providers.schedule import tariff_problems
from providers.services import (
    ChangeNotAllowed,
    TariffSpec,
    flat_price_in_force,
    provider_price_set,
    tariff_change,
)
from tests.factories import (
    ConnectionFactory,
    ConnectionTypeFactory,
    CustomerFactory,
    FlatTariffFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
TODAY = date(2027, 3, 15)
D = Decimal


@pytest.fixture(autouse=True)
def _mid_march_2027():
    """The rules read today's date (a change may not start in the past; a bill of the running month is
    dated today): every test here runs on 15 March 2027, mid-morning."""
    with time_machine.travel(datetime(2027, 3, 15, 10, 0, tzinfo=ZoneInfo(settings.TIME_ZONE)), tick=False):
        yield


@pytest.fixture
def old_price(provider):
    """The flat 32.50 the provider charged until today."""
    return FlatTariffFactory(provider=provider, rate=D("32.50"))


@pytest.fixture
def creator(provider):
    return UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR])


@pytest.fixture
def connection(provider):
    return ConnectionFactory(customer=CustomerFactory(provider=provider), provider=provider)


def put_price(admin_api, provider, price: str):
    return admin_api.put(f"/api/admin/providers/{provider.pk}/price", {"kwhPrice": price}, format="json")


def bill_ten_kwh(as_role, creator, connection, month: str = "2027-03"):
    """A bill of this month for 10 kWh entered, dated today: rated on today's price."""
    return as_role(creator, Role.INVOICE_CREATOR).post(
        "/api/invoices", {"connectionId": connection.pk, "month": month, "kwhConsumed": "10"}, format="json"
    )


def test_two_price_updates_on_one_day_both_succeed_and_the_second_is_in_force(admin_api, provider, old_price):
    first = put_price(admin_api, provider, "20.00")
    second = put_price(admin_api, provider, "22.50")

    assert (first.status_code, second.status_code) == (200, 200), second.json()
    assert second.json()["kwhPrice"] == "22.5000"
    assert admin_api.get(f"/api/admin/providers/{provider.pk}").json()["currentKwhPrice"] == "22.5000"
    assert flat_price_in_force(provider=provider, day=TODAY).rate == D("22.50")


def test_the_pricing_history_shows_the_corrected_row_and_its_replacement(
    admin_api, admin_user, provider, old_price
):
    first = put_price(admin_api, provider, "20.00").json()
    second = put_price(admin_api, provider, "22.50").json()

    rows = admin_api.get("/api/audit/pricing-history").json()["results"]

    shown = [
        (row["pricingId"], row["kwhPrice"], row["validFrom"], row["validTo"], row["superseded"])
        for row in rows
    ]
    assert shown == [
        (second["pricingId"], "22.5000", "2027-03-15", None, False),
        (first["pricingId"], "20.0000", "2027-03-15", "2027-03-15", True),
        (old_price.pk, "32.5000", "2020-01-01", "2027-03-15", False),
    ]
    assert rows[1]["closedBy"] == {"userId": admin_user.pk, "name": admin_user.name}
    assert rows[1]["closedAt"] is not None


def test_an_invoice_issued_after_the_correction_uses_the_second_price(
    as_role, admin_api, creator, provider, old_price, connection
):
    put_price(admin_api, provider, "20.00")
    corrected = put_price(admin_api, provider, "22.50").json()

    response = bill_ten_kwh(as_role, creator, connection)

    assert response.status_code == 201, response.json()
    assert response.json()["totalAmount"] == "225.00"  # 10 kWh x 22.50
    assert response.json()["pricingId"] == corrected["pricingId"]


def test_a_bill_issued_before_the_correction_keeps_the_price_it_was_rated_with(
    as_role, admin_api, creator, provider, old_price, connection
):
    first = put_price(admin_api, provider, "20.00").json()
    issued = bill_ten_kwh(as_role, creator, connection).json()

    put_price(admin_api, provider, "22.50")
    again = as_role(creator, Role.INVOICE_CREATOR).get(f"/api/invoices/{issued['invoiceId']}").json()

    assert (again["totalAmount"], again["pricingId"]) == ("200.00", first["pricingId"])
    assert TariffRow.objects.get(pk=first["pricingId"]).superseded


def test_a_third_update_the_same_day_supersedes_the_second_too(provider, old_price):
    for price in ("20", "21", "22"):
        provider_price_set(provider=provider, price=D(price), changed_by=None)

    rows = TariffRow.objects.filter(provider=provider, valid_from=TODAY).order_by("pk")
    assert [(row.rate, row.superseded) for row in rows] == [
        (D("20"), True),
        (D("21"), True),
        (D("22"), False),
    ]
    assert flat_price_in_force(provider=provider, day=TODAY).rate == D("22")


def test_a_same_day_correction_of_a_slabbed_change_supersedes_all_its_rows(provider):
    residential = ConnectionTypeFactory(provider=provider, code="1")

    def change(low: str, high: str) -> list[TariffRow]:
        return tariff_change(
            provider=provider,
            connection_type=residential,
            valid_from=TODAY,
            rows=[
                TariffSpec(bucket=Bucket.ALL, band_high=D("0.5"), rate=D(low), slab=1),
                TariffSpec(bucket=Bucket.ALL, band_low=D("0.5"), rate=D(high), slab=2),
            ],
            changed_by=None,
        )

    first = change("20", "30")
    second = change("21", "31")

    for row in first:
        row.refresh_from_db()
    assert [(row.valid_to, row.superseded) for row in first] == [(TODAY, True)] * 2
    in_force = TariffRow.objects.in_force_on(TODAY).filter(provider=provider)
    assert sorted(row.pk for row in in_force) == sorted(row.pk for row in second)


def test_a_change_scheduled_for_a_later_day_is_corrected_the_same_way(provider, old_price):
    later = date(2027, 6, 1)
    provider_price_set(provider=provider, price=D("40"), changed_by=None, valid_from=later)
    provider_price_set(provider=provider, price=D("38"), changed_by=None, valid_from=later)

    assert flat_price_in_force(provider=provider, day=later).rate == D("38")
    assert flat_price_in_force(provider=provider, day=date(2027, 5, 31)).rate == D("32.50")


def test_a_change_before_one_already_scheduled_is_still_refused(provider, old_price):
    provider_price_set(provider=provider, price=D("40"), changed_by=None, valid_from=date(2027, 6, 1))

    with pytest.raises(ChangeNotAllowed, match="already scheduled"):
        provider_price_set(provider=provider, price=D("39"), changed_by=None, valid_from=date(2027, 5, 1))


def test_only_a_price_change_ends_a_row_the_day_it_starts(provider):
    by_hand = TariffRow(provider=provider, rate=D("5"), valid_from=TODAY, valid_to=TODAY)

    assert tariff_problems([by_hand]) == [
        "tariff new row (all types, all, band 0 to open, from 2027-03-15 to 2027-03-14): "
        "the end must come after the start."
    ]
    with pytest.raises(IntegrityError):
        by_hand.save()


def test_the_pricing_history_page_marks_the_corrected_row(provider, old_price):
    provider_price_set(provider=provider, price=D("20"), changed_by=None)
    provider_price_set(provider=provider, price=D("22.50"), changed_by=None)
    auditor = UserFactory(provider=provider, roles=[Role.AUDITOR])
    client = Client()
    client.force_login(auditor)
    session = client.session
    session[SESSION_ROLE_KEY] = Role.AUDITOR
    session.save()

    html = client.get("/audit/pricing").content.decode()

    assert html.count("superseded: corrected the same day") == 1
    assert html.count("32.50 →") == 2  # the correction, like the row it corrected, replaced 32.50
