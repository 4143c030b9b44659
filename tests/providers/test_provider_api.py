from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.roles import Role
from providers.importing import price_schedule_import
from providers.models import Provider, TariffRow, TaxRule
from providers.services import authority_create, provider_price_set
from tests.factories import ConnectionTypeFactory, UserFactory
from tests.sample_data import SAMPLE

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
NEW_PROVIDER = {
    "code": "lesco",
    "name": "Lahore Electric Supply Company",
    "city": "Lahore",
    "email": "billing@lesco.example",
    "phoneNumber": "042-111-000-000",
    "kwhPrice": "24.5000",
}


@pytest.fixture
def platform_api(as_role):
    return as_role(UserFactory(provider=None, roles=[Role.ADMIN]), Role.ADMIN)


@pytest.fixture
def auditor_api(as_role, provider):
    return as_role(UserFactory(provider=provider, roles=[Role.AUDITOR]), Role.AUDITOR)


def test_create_provider_returns_the_seed_shape_with_its_first_price(platform_api):
    response = platform_api.post("/api/admin/providers", NEW_PROVIDER, format="json")

    assert response.status_code == 201
    body = response.json()
    assert {
        k: body[k] for k in ("code", "name", "city", "email", "phoneNumber", "currentKwhPrice", "isActive")
    } == {
        "code": "LESCO",
        "name": "Lahore Electric Supply Company",
        "city": "Lahore",
        "email": "billing@lesco.example",
        "phoneNumber": "042-111-000-000",
        "currentKwhPrice": "24.5000",
        "isActive": True,
    }
    assert (body["dueDays"], body["lateSurchargePercent"], body["currency"]) == (10, "10.00", "PKR")


def test_only_a_platform_administrator_creates_providers(admin_api):
    response = admin_api.post("/api/admin/providers", NEW_PROVIDER, format="json")

    assert response.status_code == 403
    assert not Provider.objects.filter(code="LESCO").exists()


def test_a_duplicate_provider_code_is_refused(platform_api, provider):
    response = platform_api.post(
        "/api/admin/providers", {**NEW_PROVIDER, "code": provider.code}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["fields"] == {
        "code": [f"A provider with code {provider.code} already exists; choose another code."]
    }


def test_a_negative_first_price_saves_no_provider(platform_api):
    response = platform_api.post("/api/admin/providers", {**NEW_PROVIDER, "kwhPrice": "-1"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["kwhPrice"]
    assert not Provider.objects.filter(code="LESCO").exists()


def test_get_provider_shows_its_own_provider(admin_api, provider):
    provider_price_set(provider=provider, price=Decimal("20"), changed_by=None)

    body = admin_api.get(f"/api/admin/providers/{provider.pk}").json()

    assert (body["providerId"], body["code"], body["currentKwhPrice"]) == (
        provider.pk,
        provider.code,
        "20.0000",
    )


def test_another_providers_provider_is_not_found(admin_api, other_provider):
    response = admin_api.get(f"/api/admin/providers/{other_provider.pk}")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_put_price_closes_the_open_row_and_opens_the_next(admin_api, admin_user, provider):
    first = provider_price_set(provider=provider, price=Decimal("20"), changed_by=None, valid_from=TODAY)
    start = TODAY + timedelta(days=1)

    response = admin_api.put(
        f"/api/admin/providers/{provider.pk}/price",
        {"kwhPrice": "22.75", "validFrom": start.isoformat()},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["kwhPrice"], body["validFrom"], body["validTo"]) == ("22.7500", start.isoformat(), None)
    assert body["createdBy"] == {"userId": admin_user.pk, "name": admin_user.name}
    first.refresh_from_db()
    assert (first.valid_to, first.closed_by) == (start, admin_user)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kwhPrice": "-5"}, "kwhPrice"),
        ({"kwhPrice": "abc"}, "kwhPrice"),
        ({}, "kwhPrice"),
        ({"kwhPrice": "5", "validFrom": "2020-01-01"}, "validFrom"),
    ],
)
def test_put_price_refuses_bad_input_and_changes_nothing(admin_api, provider, payload, field):
    provider_price_set(provider=provider, price=Decimal("20"), changed_by=None)

    response = admin_api.put(f"/api/admin/providers/{provider.pk}/price", payload, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert list(TariffRow.objects.values_list("rate", "valid_to")) == [(Decimal("20"), None)]


def test_put_price_on_another_provider_is_not_found_and_changes_nothing(admin_api, other_provider):
    provider_price_set(provider=other_provider, price=Decimal("20"), changed_by=None)

    response = admin_api.put(
        f"/api/admin/providers/{other_provider.pk}/price", {"kwhPrice": "1"}, format="json"
    )

    assert response.status_code == 404
    assert TariffRow.objects.get().rate == Decimal("20")


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.SUPER_CREATOR, Role.INVOICE_CREATOR, Role.CUSTOMER])
def test_only_administrators_change_prices(as_role, provider, role):
    client = as_role(UserFactory(provider=provider, roles=[role]), role)

    response = client.put(f"/api/admin/providers/{provider.pk}/price", {"kwhPrice": "1"}, format="json")

    assert response.status_code == 403


def test_pricing_history_shows_every_change_of_the_auditors_provider_only(
    auditor_api, provider, other_provider
):
    changer = UserFactory(provider=provider, roles=[Role.ADMIN])
    provider_price_set(provider=provider, price=Decimal("20"), changed_by=changer, valid_from=TODAY)
    provider_price_set(
        provider=provider, price=Decimal("21"), changed_by=changer, valid_from=TODAY + timedelta(days=30)
    )
    provider_price_set(provider=other_provider, price=Decimal("99"), changed_by=None)

    body = auditor_api.get("/api/audit/pricing-history").json()

    assert body["count"] == 2
    assert [(r["kwhPrice"], r["providerId"], r["createdBy"]["name"]) for r in body["results"]] == [
        ("21.0000", provider.pk, changer.name),
        ("20.0000", provider.pk, changer.name),
    ]
    assert body["results"][1]["validTo"] == (TODAY + timedelta(days=30)).isoformat()


def test_pricing_history_is_not_for_customers(as_role, provider):
    client = as_role(UserFactory(provider=provider, roles=[Role.CUSTOMER]), Role.CUSTOMER)

    assert client.get("/api/audit/pricing-history").status_code == 403


@pytest.fixture
def residential(provider):
    return ConnectionTypeFactory(provider=provider, code="1")


def tou_rows(peak_low: str, peak_high: str) -> list[dict]:
    return [
        {"bucket": "peak", "slab": 1, "bandHigh": "0.09", "rate": peak_low},
        {
            "bucket": "peak",
            "slab": 2,
            "bandLow": "0.09",
            "rate": peak_high,
            "minUnits": "63",
            "minAmount": "1953",
        },
        {"bucket": "off_peak", "slab": 1, "bandHigh": "0.33", "rate": "14"},
        {"bucket": "off_peak", "slab": 2, "bandLow": "0.33", "rate": "21"},
    ]


def test_tariff_change_through_the_api_and_the_schedule_in_force_on_a_date(admin_api, provider, residential):
    url = f"/api/providers/{provider.pk}/tariff-changes"
    later = TODAY + timedelta(days=40)
    created = admin_api.post(
        url,
        {"connectionType": "1", "validFrom": TODAY.isoformat(), "rows": tou_rows("21", "31")},
        format="json",
    )
    admin_api.post(
        url,
        {"connectionType": "1", "validFrom": later.isoformat(), "rows": tou_rows("25", "35")},
        format="json",
    )

    now = admin_api.get(f"/api/providers/{provider.pk}/schedule").json()
    then = admin_api.get(f"/api/providers/{provider.pk}/schedule?date={later.isoformat()}").json()

    assert created.status_code == 201
    assert sorted(r["kwhPrice"] for r in now["tariffs"]) == ["14.0000", "21.0000", "21.0000", "31.0000"]
    assert sorted(r["kwhPrice"] for r in then["tariffs"]) == ["14.0000", "21.0000", "25.0000", "35.0000"]
    assert {r["connectionType"] for r in then["tariffs"]} == {"1"}


def test_an_unsound_tariff_change_through_the_api_names_the_problem(admin_api, provider, residential):
    rows = tou_rows("21", "31")[:3]  # off-peak has no slab above 0.33

    response = admin_api.post(
        f"/api/providers/{provider.pk}/tariff-changes",
        {"connectionType": "1", "validFrom": TODAY.isoformat(), "rows": rows},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "schedule_invalid"
    assert "top band must be open" in response.json()["detail"]
    assert not TariffRow.objects.exists()


def test_a_connection_type_of_another_provider_is_not_found_in_a_tariff_change(
    admin_api, provider, other_provider
):
    ConnectionTypeFactory(provider=other_provider, code="77")

    response = admin_api.post(
        f"/api/providers/{provider.pk}/tariff-changes",
        {"connectionType": "77", "validFrom": TODAY.isoformat(), "rows": [{"rate": "5"}]},
        format="json",
    )

    assert response.status_code == 404


def test_taxes_are_added_listed_and_closed(admin_api, provider, residential):
    admin_api.post(
        f"/api/providers/{provider.pk}/connection-types",
        {"code": "2", "description": "Residential 10 kW"},
        format="json",
    )
    authority_create(provider=provider, code="FBR", name="Federal Board of Revenue")
    url = f"/api/providers/{provider.pk}/taxes"
    added = admin_api.post(
        url,
        {
            "connectionType": "1",
            "name": "GST",
            "authority": "FBR",
            "rate": "0.17",
            "validFrom": TODAY.isoformat(),
        },
        format="json",
    )
    overlapping = admin_api.post(
        url,
        {
            "connectionType": "1",
            "name": "GST",
            "authority": "FBR",
            "rate": "0.18",
            "validFrom": TODAY.isoformat(),
        },
        format="json",
    )
    closed = admin_api.post(
        f"{url}/{added.json()['id']}/close",
        {"validTo": (TODAY + timedelta(days=5)).isoformat()},
        format="json",
    )

    assert added.status_code == 201
    assert (added.json()["rate"], added.json()["authority"]) == ("0.1700", "FBR")
    assert overlapping.status_code == 400
    assert "overlaps" in overlapping.json()["detail"]
    assert closed.json()["validTo"] == (TODAY + timedelta(days=5)).isoformat()
    assert admin_api.get(url).json()["count"] == 1
    assert admin_api.get(f"{url}?date={(TODAY + timedelta(days=5)).isoformat()}").json()["count"] == 0


@pytest.mark.parametrize(
    "path", ["schedule", "taxes", "tariffs", "connection-types", "subsidies", "fixed-charges"]
)
def test_schedule_rows_of_another_provider_are_not_found(admin_api, other_provider, path):
    response = admin_api.get(f"/api/providers/{other_provider.pk}/{path}")

    assert response.status_code == 404


def test_an_auditor_reads_the_schedule_but_cannot_change_it(auditor_api, provider, residential):
    assert auditor_api.get(f"/api/providers/{provider.pk}/schedule").status_code == 200
    response = auditor_api.post(
        f"/api/providers/{provider.pk}/tariff-changes",
        {"connectionType": "1", "validFrom": TODAY.isoformat(), "rows": [{"rate": "5"}]},
        format="json",
    )
    assert response.status_code == 403


def test_the_schedule_date_must_be_a_date(admin_api, provider):
    response = admin_api.get(f"/api/providers/{provider.pk}/schedule?date=yesterday")

    assert response.status_code == 400
    assert response.json()["fields"] == {"date": ["Use a date like 2024-07-31."]}


def test_the_sample_schedule_in_force_mid_2024(admin_api, provider):
    price_schedule_import(provider=provider, data=SAMPLE)

    body = admin_api.get(f"/api/providers/{provider.pk}/schedule?date={date(2024, 7, 31)}").json()

    assert (len(body["tariffs"]), len(body["taxes"]), len(body["fixedCharges"]), len(body["subsidies"])) == (
        68,
        34,
        34,
        2,
    )
    assert len(admin_api.get(f"/api/providers/{provider.pk}/schedule?date=2025-01-01").json()["tariffs"]) == 0


@pytest.fixture
def their_tax(other_provider):
    authority = authority_create(provider=other_provider, code="FBR", name="Federal Board of Revenue")
    return TaxRule.objects.create(
        provider=other_provider, name="GST", authority=authority, rate=Decimal("0.17"), valid_from=TODAY
    )


def test_closing_another_providers_row_is_not_found_and_changes_nothing(admin_api, provider, their_tax):
    own_url = admin_api.post(
        f"/api/providers/{provider.pk}/taxes/{their_tax.pk}/close",
        {"validTo": TODAY.isoformat()},
        format="json",
    )
    their_url = admin_api.post(
        f"/api/providers/{their_tax.provider_id}/taxes/{their_tax.pk}/close",
        {"validTo": TODAY.isoformat()},
        format="json",
    )

    assert (own_url.status_code, their_url.status_code) == (404, 404)
    their_tax.refresh_from_db()
    assert their_tax.valid_to is None


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("tariff-changes", {"validFrom": TODAY.isoformat(), "rows": [{"rate": "1"}]}),
        ("taxes", {"name": "GST", "authority": "FBR", "rate": "0.1", "validFrom": TODAY.isoformat()}),
        ("connection-types", {"code": "9", "description": "Theirs"}),
    ],
)
def test_changing_another_providers_schedule_is_not_found(admin_api, their_tax, path, payload):
    response = admin_api.post(f"/api/providers/{their_tax.provider_id}/{path}", payload, format="json")

    assert response.status_code == 404
    assert TariffRow.objects.count() == 0
    assert TaxRule.objects.count() == 1


def test_staff_of_the_provider_may_read_it(auditor_api, provider):
    assert auditor_api.get(f"/api/admin/providers/{provider.pk}").json()["code"] == provider.code
